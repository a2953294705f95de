// The Network tab and the host's networks end to end: a real `corral serve` (QEMU under TCG)
// driven through Chromium, checked with the real `corral` CLI. A VM without NICs says what to
// do; a NIC and a forward added in the tab are what `corral vm nic list` and `vm forward
// list` show; a forward on a port another VM or another program holds is refused on its field
// naming the holder (a program by name and pid), and nothing is saved; an exposed forward asks
// first; the host page lists the private network with its VM; on a running guest a private NIC
// is plugged in at once, while a passt NIC and a removal wait for the next start. Needs
// `npm run build`.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { launchChromium } from '../browser';
import { BOOT_MS, endProcessesOf, FIXTURE, freePort, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_E2E_SHOTS ?? path.join(os.tmpdir(), 'corral-e2e-network');

describe('the Network tab', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  let vm: VmInfo;
  let held: net.Server | null = null;
  const problems: string[] = [];
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const cli = async (...args: string[]) => {
    const r = await corral(dataDir, args);
    if (r.code !== 0) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const nicList = async () => JSON.parse(await cli('vm', 'nic', 'list', 'web', '--json')) as Array<Record<string, unknown>>;
  const forwardList = async () => JSON.parse(await cli('vm', 'forward', 'list', 'web', '--json')) as Array<Record<string, unknown>>;

  async function addForward(nic: string, hostPort: number, guestPort: number, hostAddr = '127.0.0.1') {
    await page.getByTestId(`forward-add-${nic}`).click();
    const form = page.getByTestId(`forward-form-${nic}`);
    await form.getByTestId('forward-addr').fill(hostAddr);
    await form.getByTestId('forward-host-port').fill(String(hostPort));
    await form.getByTestId('forward-guest-port').fill(String(guestPort));
    await form.getByTestId('forward-submit').click();
  }

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    fs.mkdirSync(SHOTS, { recursive: true });
    dataDir = tempDir('corral-e2e-net-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    vm = await api.call('vm.create', {
      name: 'web',
      memoryMiB: 256,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=ttyS0 quiet',
      nics: [],
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1300, height: 1000 } })).newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serve.url);
    await page.locator(`[data-testid="vm-item"][data-vm-id="${vm.id}"]`).click();
    await page.getByTestId('tab-network').click();
    await page.getByTestId('network-tab').waitFor();
  }, 120_000);

  // a failure that does not reproduce is read from what the page showed then
  afterEach(async ({ task }) => {
    if (task.result?.state !== 'fail' || !page) return;
    const file = path.join(SHOTS, `FAILED-${task.name.slice(0, 40).replace(/\W+/g, '-')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    const nic = await page
      .getByTestId('forwards-net0')
      .textContent({ timeout: 2000 })
      .catch(() => null);
    console.log(`failed: the page is in ${file}; net0's forwards read: ${nic ?? '(none shown)'}`);
  });

  afterAll(async () => {
    held?.close();
    api?.close();
    await browser?.close();
    await serve?.stop();
    if (dataDir) endProcessesOf(dataDir);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('says what to do when the VM has no network', async () => {
    const empty = page.getByTestId('nics-empty');
    await empty.waitFor();
    expect(await empty.textContent()).toMatch(/No network\..*has no network interface.*Add a NIC/s);
    await shot('01-no-nics');
  });

  it('adds a NIC from the tab, as the CLI then lists it', async () => {
    await page.getByTestId('nic-add-empty').click();
    await page.getByTestId('nic-form').waitFor();
    // the kinds are radio buttons: the keyboard picks one
    await page.getByTestId('nic-kind-passt').focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.getByTestId('nic-kind-user').isChecked()).toBe(true);
    await shot('02-add-nic');
    await page.getByTestId('nic-submit').click();
    const card = page.getByTestId('nic-net0');
    await card.waitFor();
    const [nic] = await nicList();
    expect(nic).toMatchObject({ id: 'net0', kind: 'user', forwards: [] });
    expect(await page.getByTestId('nic-mac-net0').textContent()).toBe(nic!.mac);
    expect(await page.getByTestId('nic-addresses-net0').textContent()).toMatch(/Known while “web” runs/);
    expect(await page.getByTestId('forwards-empty-net0').textContent()).toMatch(/No forwards/);
    expect(await cli('vm', 'nic', 'list', 'web')).toMatch(/net0\s+user\s+52:54:00/);
  });

  it('adds a forward from the tab, as `corral vm forward list` then shows it', async () => {
    const port = await freePort();
    // the form opens with the host port focused, the field most forwards need changed
    await page.getByTestId('forward-add-net0').click();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('forward-host-port');
    await page.getByTestId('forward-form-net0').getByRole('button', { name: 'Cancel' }).click();
    await addForward('net0', port, 22);
    await page.getByTestId(`forward-tcp-${port}`).waitFor();
    expect(await forwardList()).toEqual([
      { nic: 'net0', proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 22, exposed: false },
    ]);
    expect(await cli('vm', 'forward', 'list', 'web')).toMatch(new RegExp(`net0\\s+tcp\\s+127\\.0\\.0\\.1:${port}\\s+22\\s+no`));
    await shot('03-forward-added');
  });

  it('refuses a port another VM forwards, naming that VM on the field, and saves nothing', async () => {
    const port = await freePort();
    await api.call('vm.create', {
      name: 'db',
      memoryMiB: 128,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      nics: [{ kind: 'user', forwards: [{ hostPort: port, guestPort: 5432 }] }],
    });
    const before = await forwardList();
    await addForward('net0', port, 5432);
    const err = page.getByTestId('forward-error-hostPort');
    await err.waitFor();
    expect(await err.textContent()).toBe(`host port ${port}/tcp is already forwarded by VM "db"`);
    const form = page.getByTestId('forward-form-net0');
    expect(await form.getByTestId('forward-host-port').getAttribute('aria-invalid')).toBe('true');
    await shot('04-forward-refused');
    expect(await forwardList()).toEqual(before);
    // typing clears the error
    await form.getByTestId('forward-host-port').fill(String(port + 1));
    expect(await page.getByTestId('forward-error-hostPort').count()).toBe(0);
  });

  it('refuses a port another program listens on, naming the program', async () => {
    const port = await freePort();
    held = net.createServer();
    await new Promise<void>((resolve) => held!.listen(port, '127.0.0.1', resolve));
    const before = await forwardList();
    const form = page.getByTestId('forward-form-net0');
    await form.getByTestId('forward-host-port').fill(String(port));
    await form.getByTestId('forward-submit').click();
    const err = page.getByTestId('forward-error-hostPort');
    await err.waitFor();
    // named: this test's own process holds it
    expect(await err.textContent()).toMatch(
      new RegExp(`host port ${port}/tcp on 127\\.0\\.0\\.1 is in use by another program \\(.+, pid ${process.pid}\\)`),
    );
    expect(await forwardList()).toEqual(before);
    await form.getByRole('button', { name: 'Cancel' }).click();
  });

  it('asks before a forward opens the host beyond loopback, and saves it exposed only when confirmed', async () => {
    const port = await freePort();
    await addForward('net0', port, 80, '0.0.0.0');
    const dialog = page.getByTestId('forward-expose-dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/it listens on every network of the host/);
    await shot('05-forward-expose');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await forwardList()).map((f) => f.hostPort)).not.toContain(port);

    await page.getByTestId('forward-form-net0').getByTestId('forward-submit').click();
    await dialog.getByTestId('confirm').click();
    await page.getByTestId(`forward-tcp-${port}`).waitFor();
    expect(await forwardList()).toContainEqual({
      nic: 'net0',
      proto: 'tcp',
      hostAddr: '0.0.0.0',
      hostPort: port,
      guestPort: 80,
      exposed: true,
    });
    expect(await page.getByTestId(`forward-tcp-${port}`).textContent()).toMatch(/exposed/);
    await page.getByTestId(`forward-remove-tcp-${port}`).click();
    await page.getByTestId(`forward-tcp-${port}`).waitFor({ state: 'detached' });
    expect((await forwardList()).map((f) => f.hostPort)).not.toContain(port);
  });

  it('puts the VM on a private network, which the host page lists with it', async () => {
    await page.getByTestId('nic-add').click();
    await page.getByTestId('nic-kind-private').check();
    await page.getByTestId('nic-network').fill('lab');
    await page.getByTestId('nic-submit').click();
    await page.getByTestId('nic-net1').waitFor();
    expect((await nicList())[1]).toMatchObject({ id: 'net1', kind: 'private', network: 'lab' });
    expect(await page.getByTestId('nic-net1').textContent()).toMatch(/private network “lab”/);
    await shot('06-private-nic');

    await page.getByTestId('host-button').click();
    const lab = page.getByTestId('private-lab');
    await lab.waitFor();
    expect(await lab.textContent()).toMatch(/lab.*1 VM.*web/s);
    expect(await cli('network', 'list')).toMatch(/private\s+lab\s+VMs of this host only\s+web/);
    await page.getByTestId('host-networks').scrollIntoViewIfNeeded();
    await shot('07-host-networks');
    // a VM's chip opens its Network tab
    await lab.getByRole('button', { name: 'web' }).click();
    await page.getByTestId('host-panel').waitFor({ state: 'detached' });
    await page.getByTestId('nic-net1').waitFor();
  });

  it(
    'on a running guest, plugs a private NIC in at once and keeps a passt NIC and a removal for the next start',
    async () => {
      await api.call('vm.start', { vm: vm.id });
      await waitFor('web to run', async () => (await api.call('vm.get', { vm: vm.id })).state === 'running', BOOT_MS, 200);
      // the user NIC's address is the one slirp hands out, and who says so
      await waitFor(
        'the address of net0',
        async () => /10\.0\.2\.15/.test((await page.getByTestId('nic-addresses-net0').textContent()) ?? ''),
        30_000,
        200,
      );
      expect(await page.getByTestId('nic-addresses-net0').textContent()).toMatch(/seen by the host/);
      expect(await page.getByTestId('nic-traffic-net0').textContent()).toMatch(/Not measured|↓/);

      await page.getByTestId('nic-add').click();
      await page.getByTestId('nic-kind-private').check();
      expect(await page.getByTestId('nic-when').textContent()).toMatch(/gets this NIC at once/);
      await page.getByTestId('nic-network').fill('lab');
      await page.getByTestId('nic-submit').click();
      await page.getByTestId('nic-net2').waitFor();
      const info = await api.call('vm.get', { vm: vm.id });
      expect(info.booted?.nics.map((n) => n.id)).toEqual(['net0', 'net1', 'net2']);
      expect(await page.getByTestId('nic-pending-net2').count()).toBe(0);

      if ((await api.call('network.list', {})).passt) {
        await page.getByTestId('nic-add').click();
        await page.getByTestId('nic-kind-passt').check();
        expect(await page.getByTestId('nic-when').textContent()).toMatch(/added at its next start/);
        await page.getByTestId('nic-submit').click();
        await page.getByTestId('nic-pending-net3').waitFor();
        expect(await page.getByTestId('nic-pending-net3').textContent()).toMatch(/from the next start/);
        expect(await page.getByTestId('nic-addresses-net3').textContent()).toMatch(/After the next start/);
      }

      await page.getByTestId('nic-remove-net1').click();
      const dialog = page.getByTestId('nic-remove-dialog');
      expect(await dialog.textContent()).toMatch(/the guest keeps the NIC until its next start/);
      await dialog.getByTestId('confirm').click();
      await page.getByTestId('nic-pending-net1').waitFor();
      expect(await page.getByTestId('nic-pending-net1').textContent()).toMatch(/removed at the next start/);
      expect((await nicList()).map((n) => n.id)).not.toContain('net1');
      await page.getByTestId('nic-pending-note').waitFor();
      await shot('08-running-pending');
      expect(problems).toEqual([]);
    },
    BOOT_MS + 120_000,
  );
});
