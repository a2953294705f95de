// Roles end to end: a real `corral serve` with users, a real guest under TCG, and Chromium
// logging in as each role. A viewer sees the VMs but can change nothing and only watch the
// serial console; an operator cannot open Settings nor turn the host shell or monitor on; a
// wrong password is refused, then rate limited; logout ends the session.
// Needs `npm run build` (host and UI) and the guest fixture (built by the global setup).
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir } from '../helpers';
import { launchChromium } from '../browser';
import { corral, ServeProcess } from '../integration/serve-process';
import { termText } from './page-helpers';

const data = tempDir();
const VM = 'shared-guest';
const SHOTS = process.env.CORRAL_SCREENSHOTS; // where to keep screenshots for a look, if set
let serve: ServeProcess;
let browser: Browser;
let base = '';

async function shot(page: Page, name: string) {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function cli(...args: string[]) {
  const r = await corral(data, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function addUser(name: string, role: string, password: string) {
  const r = await corral(data, ['user', 'add', name, '--role', role, '--password-stdin'], password + '\n');
  if (r.code !== 0) throw new Error(r.stderr);
}

async function loginPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(base);
  await page.getByTestId('login').waitFor();
  return page;
}

async function logIn(page: Page, user: string, password: string) {
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-password').press('Enter'); // keyboard friendly
}

/** A call over the page's own WebSocket (its login cookie), as a script in the page could make. */
function callFromPage(page: Page, method: string, args: unknown): Promise<{ result?: unknown; error?: { code: string; message: string } }> {
  return page.evaluate(
    ([m, a]) =>
      new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/api`);
        ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: m, args: a }));
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data as string);
          if (msg.id === 1) {
            ws.close();
            resolve(msg);
          }
        };
        ws.onerror = () => resolve({ error: { code: 'ws', message: 'socket refused' } });
      }),
    [method, args] as const,
  );
}

beforeAll(async () => {
  if (SHOTS) fs.mkdirSync(SHOTS, { recursive: true });
  serve = await ServeProcess.start(data);
  base = `http://127.0.0.1:${serve.port}/`;
  await cli('vm', 'create', VM, '--memory', '256M', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0');
  await cli('vm', 'start', VM);
  await addUser('root', 'admin', 'admin-pass-1');
  await addUser('olga', 'operator', 'operator-pass');
  await addUser('vic', 'viewer', 'viewer-pass-1');
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await corral(data, ['vm', 'kill', VM]);
  await serve?.stop();
});

describe('roles in the browser', () => {
  it('asks a browser without a login to log in, and refuses a wrong password', async () => {
    const page = await loginPage();
    await logIn(page, 'vic', 'not-the-password');
    await expect.poll(() => page.getByTestId('login-error').textContent()).toMatch(/wrong user name or password/);
    // focus goes back to the password, emptied, to try again
    expect(await page.getByTestId('login-password').inputValue()).toBe('');
    await shot(page, 'login-error');
    await page.context().close();
  });

  it('shows a viewer the VMs with every change disabled and why, and the serial console read-only', async () => {
    const page = await loginPage();
    await logIn(page, 'vic', 'viewer-pass-1');
    await page.getByTestId('me').waitFor();
    expect(await page.getByTestId('me').textContent()).toMatch(/vic\s*viewer/);
    await page.getByText(VM).first().click();
    for (const id of ['new-vm', 'action-stop', 'action-kill', 'action-edit', 'action-delete', 'settings']) {
      const b = page.getByTestId(id);
      expect(await b.isDisabled(), id).toBe(true);
      expect(await b.getAttribute('title'), id).toMatch(/needs the (operator|admin) role/);
    }
    await page.getByTestId('tab-console').click();
    await page.getByTestId('serial-readonly').waitFor({ timeout: BOOT_MS });
    // no console that takes input is offered
    expect(await page.getByRole('tab', { name: /Display/ }).count()).toBe(0);
    expect(await page.getByTestId('console-new-terminal').count()).toBe(0);
    await expect.poll(() => termText(page, 'serial-console'), { timeout: BOOT_MS }).toContain(FIXTURE.banner);
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo VIEWER-TYPED-$((6*7))\n');
    // the host refuses it as well
    const write = await callFromPage(page, 'serial.write', { vm: VM, data: btoa('echo VIEWER-SNEAKED\n') });
    expect(write.error).toMatchObject({ code: 'forbidden' });
    await new Promise((r) => setTimeout(r, 3000));
    const text = await termText(page, 'serial-console');
    expect(text).not.toContain('VIEWER-TYPED-42');
    expect(text).not.toContain('VIEWER-SNEAKED');
    await shot(page, 'viewer');
    await page.context().close();
  });

  it("keeps an operator out of Settings and the host's switches, but lets them run VMs", async () => {
    const page = await loginPage();
    await logIn(page, 'olga', 'operator-pass');
    await page.getByTestId('me').waitFor();
    await page.getByText(VM).first().click();
    expect(await page.getByTestId('action-stop').isDisabled()).toBe(false);
    expect(await page.getByTestId('new-vm').isDisabled()).toBe(false);
    expect(await page.getByTestId('settings').isDisabled()).toBe(true);
    expect(await page.getByTestId('settings').getAttribute('title')).toMatch(/needs the admin role/);
    for (const args of [{ hostShell: true }, { monitor: true }]) {
      const r = await callFromPage(page, 'host.settings', args);
      expect(r.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/needs the admin role/) });
    }
    const shell = await callFromPage(page, 'terminal.open', { kind: 'host', cols: 80, rows: 24 });
    expect(shell.error).toMatchObject({ code: 'forbidden' });
    await shot(page, 'operator');
    await page.context().close();
  });

  it('ends the session on logout', async () => {
    const page = await loginPage();
    await logIn(page, 'root', 'admin-pass-1');
    await page.getByTestId('logout').waitFor();
    // an admin has the audit log, with the refusals above in it
    await page.getByTestId('open-audit').click();
    await page.getByTestId('audit-table').waitFor();
    expect(await page.getByTestId('audit-table').textContent()).toMatch(/olga[\s\S]*host\.settings|host\.settings[\s\S]*olga/);
    await shot(page, 'audit');
    await page.keyboard.press('Escape');
    await page.getByTestId('logout').click();
    await page.getByTestId('login').waitFor();
    expect(await page.getByText('Your session ended').count()).toBe(1);
    // the cookie is gone: a reload asks to log in again, and the API refuses the page
    await page.reload();
    await page.getByTestId('login').waitFor();
    const r = await callFromPage(page, 'vm.list', {});
    expect(r.error).toMatchObject({ code: 'ws' });
    await page.context().close();
  });

  it('rate limits repeated wrong passwords with the time to wait', async () => {
    const page = await loginPage();
    for (let i = 0; i < 5; i++) {
      await logIn(page, 'olga', `wrong-${i}-password`);
      await expect.poll(() => page.getByTestId('login-error').textContent()).toMatch(i < 4 ? /wrong user name/ : /try again in \d+ s/);
    }
    expect(await page.getByTestId('login-submit').isDisabled()).toBe(true);
    expect(await page.getByTestId('login-submit').textContent()).toMatch(/Wait \d+ s/);
    await shot(page, 'rate-limited');
    await page.context().close();
  });
});
