// The cluster's moves and HA in the browser: two real `corral serve` hosts on loopback (each its
// own ports and etcd member) form a cluster, and the page of host alpha drives them. HA settings
// are refused with the host's reason until the VM's files are on a pool added as shared; the HA
// panel lists the VM and switches the balancer. "Move to…" shows a host in maintenance disabled
// with its reason, then moves a running guest live to beta. Beta is evacuated from alpha's page
// (the guest comes back to alpha, beta is in maintenance) and restored with its VMs brought back.
// Needs `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { formAlphaBeta } from './two-hosts';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review
const MOVE_MS = 240_000;

/** SIGKILLs every process whose command line names one of these dirs (QEMU, passt, the fencer). */
function killUnder(dirs: string[]): void {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (dirs.some((d) => argv.includes(d))) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

describe('moves, maintenance and HA in the browser', () => {
  const dirs = [tempDir('corral-e2e-mt-a-'), tempDir('corral-e2e-mt-b-')];
  const shared = tempDir('corral-e2e-mt-shared-');
  let serves: ServeProcess[] = [];
  let apis: WsApi[] = [];
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shot = async (name: string) => SHOTS && (await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }));

  /** Where the cluster says a VM is, and its state, as host alpha lists it. */
  const whereIs = async (name: string) => {
    const vm = (await apis[0]!.call('vm.list', {})).find((v) => v.name === name);
    return vm ? { host: vm.host?.name ?? null, state: vm.state } : null;
  };
  const hostStatus = async (name: string) => (await apis[0]!.call('cluster.status', {})).hosts.find((h) => h.name === name)!;
  const selectVm = async (name: string) => {
    await page.locator('[data-testid="vm-item"]', { hasText: name }).first().click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
  };

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    serves = await Promise.all(dirs.map((d) => ServeProcess.start(d)));
    apis = await Promise.all(serves.map((s) => WsApi.connect(s.port, s.token)));
    const [a, b] = apis as [WsApi, WsApi];
    await formAlphaBeta(a, b);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serves[0]!.url);
    await page.getByTestId('host-tree').waitFor();
  }, 180_000);

  afterAll(async () => {
    if (SHOTS)
      for (const [i, api] of apis.entries()) {
        const evs = await api.call('events.list', { limit: 300 }).catch((e: Error) => [e.message]);
        fs.writeFileSync(path.join(SHOTS, `mt-events-${i}.json`), JSON.stringify(evs, null, 1));
      }
    for (const api of apis) api.close();
    await browser?.close();
    for (const s of serves) await s.stop();
    if (SHOTS) serves.forEach((s, i) => fs.writeFileSync(path.join(SHOTS, `mt-serve-${i}.log`), s.out + s.stderr));
    // a stopped serve leaves its guests (a service restart) and its fencer: end what the test made
    killUnder([...dirs, shared]);
    for (const d of [...dirs, shared]) fs.rmSync(d, { recursive: true, force: true });
  }, 180_000);

  it('refuses HA with the host reason until the files are on a shared pool; the HA panel shows it', async () => {
    const [a, b] = apis as [WsApi, WsApi];
    // boot files in a pool only this host has: HA is refused, and the page says why
    await a.call('vm.create', { name: 'ha-guest', memoryMiB: 128, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd });
    await selectVm('ha-guest');
    const card = page.getByTestId('ha-card');
    await card.waitFor();
    await card.getByTestId('ha-blocker-reason').waitFor();
    expect(await card.getByTestId('ha-blocker-reason').textContent()).toContain('shared pool');
    expect(await card.getByTestId('ha-enabled').isDisabled()).toBe(true);
    await card.scrollIntoViewIfNeeded();
    await shot('mt-ha-refused');

    // the same folder on both hosts, added as a shared pool: from alpha's host page, and on beta
    await page.getByTestId('host-button').click();
    const pools = page.getByTestId('host-pools');
    await pools.waitFor();
    await pools.getByTestId('pools-no-shared').waitFor();
    await pools.getByTestId('pool-add').click();
    await pools.getByTestId('pool-name').fill('nfs');
    await pools.getByTestId('pool-path').fill(shared);
    await pools.getByTestId('pool-shared').check();
    await shot('mt-pool-add');
    await pools.getByTestId('pool-submit').click();
    await pools.locator('[data-testid="pool-row"][data-pool="nfs"] [data-testid="pool-shared-tag"]').waitFor();
    expect((await a.call('pool.list', {})).find((p) => p.name === 'nfs')?.shared).toBe(true);
    expect(await pools.getByTestId('pools-no-shared').count()).toBe(0);
    await shot('mt-pool-shared');
    await page.getByTestId('host-panel').getByRole('button', { name: 'Close' }).first().click();
    await page.getByTestId('host-panel').waitFor({ state: 'detached' });
    await b.call('pool.add', { name: 'nfs', path: shared, shared: true });

    // the VM's boot files moved onto the shared pool: the host now allows HA
    for (const f of [FIXTURE.kernel, FIXTURE.initrd]) fs.copyFileSync(f, path.join(shared, path.basename(f)));
    await a.call('vm.update', {
      vm: 'ha-guest',
      kernel: path.join(shared, path.basename(FIXTURE.kernel)),
      initrd: path.join(shared, path.basename(FIXTURE.initrd)),
    });
    await waitFor('the HA switch enabled', async () => !(await card.getByTestId('ha-enabled').isDisabled()), 30_000, 100);
    expect(await card.getByTestId('ha-blocker-reason').count()).toBe(0);
    await card.getByTestId('ha-enabled').check();
    await card.getByTestId('ha-priority').fill('7');
    await card.getByTestId('ha-group').fill('web');
    await card.locator('[data-testid="ha-host"][data-host="beta"]').check();
    await card.getByTestId('vm-evacuate').selectOption('restart');
    await card.getByTestId('ha-save').click();
    await waitFor('HA saved', async () => (await a.call('vm.get', { vm: 'ha-guest' })).config.ha.enabled, 30_000, 100);
    const cfg = (await a.call('vm.get', { vm: 'ha-guest' })).config;
    expect(cfg.ha).toEqual({ enabled: true, priority: 7, group: 'web', hosts: ['beta'] });
    expect(cfg.evacuate).toBe('restart');
    await waitFor('the card says On', async () => (await card.getByTestId('ha-state').textContent()) === 'On', 10_000, 100);
    await shot('mt-ha-on');

    // the HA panel: the VM with its settings, the balancer's dry run and its switch
    await page.getByTestId('ha-open').click();
    const panel = page.getByTestId('ha-panel');
    const row = panel.locator('[data-testid="ha-vm"][data-vm="ha-guest"]');
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain('web');
    await panel.getByTestId('ha-dry-run').waitFor();
    expect(await panel.locator('[data-testid="ha-proposal"], [data-testid="ha-no-proposal"]').count()).toBe(1);
    const sw = panel.getByTestId('ha-balance-switch');
    expect(await sw.isChecked()).toBe(false);
    await sw.check();
    await waitFor('balancing on', async () => (await a.call('ha.balance', { mode: 'dry-run' })).enabled, 10_000, 100);
    await shot('mt-ha-panel');
    await sw.uncheck();
    await waitFor('balancing off', async () => !(await a.call('ha.balance', { mode: 'dry-run' })).enabled, 10_000, 100);
    await panel.getByRole('button', { name: 'Close' }).click();
    await panel.waitFor({ state: 'detached' });
    // HA off again, so the moves below are not the HA leader's business
    await a.call('vm.update', { vm: 'ha-guest', ha: { ...cfg.ha, enabled: false } });
  }, 180_000);

  it(
    'moves a running guest live to another host, a host in maintenance disabled with its reason',
    async () => {
      const [a, b] = apis as [WsApi, WsApi];
      await a.call('vm.create', {
        name: 'mover',
        memoryMiB: 256,
        kernel: FIXTURE.kernel,
        initrd: FIXTURE.initrd,
        append: 'console=ttyS0 quiet',
        disk: { size: 16 * 1024 * 1024 },
      });
      await a.call('vm.start', { vm: 'mover' });
      await waitFor('mover running', async () => (await whereIs('mover'))?.state === 'running', BOOT_MS, 500);
      await selectVm('mover');

      // beta in maintenance: listed, disabled, with the reason its host gives
      await b.call('host.evacuate', { host: 'beta' });
      await page.getByTestId('action-move').click();
      const dlg = page.getByTestId('move-dialog');
      const beta = dlg.locator('[data-testid="move-target"][data-host="beta"]');
      await beta.waitFor({ timeout: 30_000 });
      expect(await beta.getAttribute('data-ok')).toBe('false');
      expect(await beta.getByTestId('move-why').textContent()).toContain('maintenance');
      expect(await beta.locator('input').isDisabled()).toBe(true);
      expect(await dlg.getByTestId('move-submit').isDisabled()).toBe(true);
      await shot('mt-move-disabled');
      await page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'detached' });
      await b.call('host.restore', { host: 'beta', bringBack: false });

      // reached by keyboard: focus the button, Enter opens the dialog
      await page.getByTestId('action-move').focus();
      await page.keyboard.press('Enter');
      await waitFor('beta can take it', async () => (await beta.getAttribute('data-ok')) === 'true', 30_000, 100);
      expect(await dlg.textContent()).toContain('live');
      await shot('mt-move-choose');
      await dlg.getByTestId('move-submit').click();
      const run = dlg.getByTestId('move-run');
      await run.waitFor();
      // progress while it runs, then the end state; the figures come from the host's events
      await shot('mt-move-progress');
      await dlg.getByTestId('move-done').waitFor({ timeout: MOVE_MS });
      expect(await dlg.getByTestId('move-done').textContent()).toContain('is now on beta');
      await shot('mt-move-done');
      // the VM really is on beta, running there, and gone from alpha
      expect(await whereIs('mover')).toEqual({ host: 'beta', state: 'running' });
      expect((await b.call('vm.get', { vm: 'mover' })).state).toBe('running');
      await dlg.getByTestId('move-close').click();
      await waitFor(
        'mover under beta in the tree',
        async () =>
          (await page.locator('[data-testid="tree-host"][data-host="beta"] [data-testid="vm-item"]', { hasText: 'mover' }).count()) === 1,
        30_000,
        200,
      );
    },
    MOVE_MS + BOOT_MS,
  );

  it(
    "evacuates beta from alpha's page, then restores it and brings its VM back",
    async () => {
      const [, b] = apis as [WsApi, WsApi];
      const betaRow = page.locator('[data-testid="tree-host"][data-host="beta"]');
      await betaRow.getByTestId('host-maintenance-open').click();
      const dlg = page.getByTestId('maintenance-dialog');
      const plan = dlg.locator('[data-testid="maintenance-vm"][data-vm="mover"]');
      await plan.waitFor();
      expect(await plan.getAttribute('data-kind')).toBe('live');
      await shot('mt-evacuate-confirm');
      await dlg.getByTestId('maintenance-go').click();
      await dlg.getByTestId('maintenance-end').waitFor({ timeout: MOVE_MS });
      expect(await dlg.getByTestId('maintenance-end').getAttribute('data-status')).toBe('done');
      expect(await dlg.getByTestId('maintenance-outcome').textContent()).toContain('mover — moved live to alpha');
      await shot('mt-evacuated');
      expect((await hostStatus('beta')).maintenance).toBe(true);
      expect(await whereIs('mover')).toEqual({ host: 'alpha', state: 'running' });
      await dlg.getByTestId('maintenance-close').click();
      await betaRow.getByTestId('host-maintenance').waitFor({ timeout: 15_000 });
      await shot('mt-tree-maintenance');

      // restore, bringing the VM back
      await betaRow.getByTestId('host-maintenance-open').click();
      await dlg.getByTestId('restore-bring-back').waitFor();
      expect(await dlg.getByTestId('restore-bring-back').isChecked()).toBe(true);
      await shot('mt-restore-confirm');
      await dlg.getByTestId('maintenance-go').click();
      await dlg.getByTestId('maintenance-end').waitFor({ timeout: MOVE_MS });
      expect(await dlg.getByTestId('maintenance-end').getAttribute('data-status')).toBe('done');
      await shot('mt-restored');
      expect((await hostStatus('beta')).maintenance).toBe(false);
      expect(await whereIs('mover')).toEqual({ host: 'beta', state: 'running' });
      expect((await b.call('vm.get', { vm: 'mover' })).state).toBe('running');
      await dlg.getByTestId('maintenance-close').click();
      await waitFor('no maintenance tag', async () => (await betaRow.getByTestId('host-maintenance').count()) === 0, 15_000, 200);
      expect(problems).toEqual([]);
    },
    2 * MOVE_MS,
  );

  it(
    "shows the move of another host's VM started elsewhere, and its history from the hosts it ran on",
    async () => {
      const [, b] = apis as [WsApi, WsApi];
      await selectVm('mover');
      // the notice may be up for a few seconds only: the page notes every text it shows
      await page.evaluate(() => {
        const w = window as unknown as { movingSeen: string[] };
        w.movingSeen = [];
        new MutationObserver(() => {
          const n = document.querySelector('[data-testid="moving-notice"]');
          if (n?.textContent) w.movingSeen.push(n.textContent.replace(/\s+/g, ' ').trim());
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
      });
      // beta moves its VM itself (its CLI, say): alpha's page hears of it through the cluster
      const moved = b.call('vm.migrate', { vm: 'mover', to: 'alpha' });
      await page
        .getByTestId('moving-notice')
        .waitFor({ timeout: MOVE_MS })
        .then(() => shot('mt-moving-notice'))
        .catch(() => undefined);
      await moved;
      await waitFor('mover on alpha', async () => (await whereIs('mover'))?.host === 'alpha', 30_000, 200);
      const seen = await page.evaluate(() => (window as unknown as { movingSeen: string[] }).movingSeen);
      expect(seen.some((t) => /^Moving to alpha: (copying its (disks|memory)|switching over)/.test(t))).toBe(true);
      await page.getByTestId('moving-notice').waitFor({ state: 'detached', timeout: 15_000 });

      // its journal on alpha holds what happened to it on beta, marked as such
      await page.getByTestId('tab-events').click();
      await page.getByTestId('event-host').first().waitFor();
      expect(await page.getByTestId('event-host').allTextContents()).toContain('on beta');
      await shot('mt-history-moved');
      expect(problems).toEqual([]);
    },
    MOVE_MS + 60_000,
  );
});
