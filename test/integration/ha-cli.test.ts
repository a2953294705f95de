// HA through the CLI against a real `corral serve`: the HA settings of `vm set` (refused with why
// for a VM on a local pool), `ha status`, `ha balance`, and a host whose real fencer recorded a
// fence refusing to start an HA VM until the fence is cleared; a guest the fencer killed gets an
// event saying so, and its restart policy does not bring it back while the host is fenced.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord, HaStatus } from '../../electron/core/api/contract';
import { monotonicMs } from '../../electron/core/ha/monotonic';
import { ensureFencer, findFencer, FencerLink, readFenceRecord } from '../../electron/core/ha/fencer/client';
import { fencerFiles } from '../../electron/core/ha/fencer/protocol';
import { processStartTime } from '../../electron/core/qemu/proc';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const FENCER_ENTRY = path.join(__dirname, '..', '..', 'out', 'electron', 'core', 'ha', 'fencer', 'main.js');
const data = tempDir();
const haDir = path.join(data, 'ha');
let serve: ServeProcess;

beforeAll(async () => {
  if (!fs.existsSync(FENCER_ENTRY)) throw new Error(`${FENCER_ENTRY} is missing: run npm run build first`);
  serve = await ServeProcess.start(data);
});

afterAll(async () => {
  await corral(data, ['vm', 'kill', 'bare']);
  await serve?.stop();
  const pid = findFencer(fencerFiles(haDir));
  if (pid) process.kill(pid, 'SIGKILL');
});

const status = async () => JSON.parse((await corral(data, ['ha', 'status', '--json'])).stdout) as HaStatus;

describe('HA from the CLI', () => {
  it('refuses HA for a VM whose boot files are on a local pool, and says why', async () => {
    expect((await corral(data, ['vm', 'create', 'local', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd])).code).toBe(0);
    const r = await corral(data, ['vm', 'set', 'local', '--ha', 'on']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ha\.enabled.*vmlinuz is in pool "fixtures", which other hosts cannot reach.*shared pool/);
    expect((await status()).vms).toEqual([]);
  });

  it('keeps the HA settings, and a fenced host refuses to start an HA VM until the fence is cleared', async () => {
    // no disk and no boot file: nothing that would have to be on shared storage
    expect((await corral(data, ['vm', 'create', 'bare'])).code).toBe(0);
    const set = await corral(data, ['vm', 'set', 'bare', '--ha', 'on', '--ha-priority', '7', '--ha-group', 'web', '--ha-hosts', 'h2,h3']);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    let s = await status();
    expect(s).toMatchObject({ clustered: false, startBlocker: null, fence: null });
    expect(s.vms).toEqual([{ name: 'bare', priority: 7, group: 'web', hosts: ['h2', 'h3'], owner: null, epoch: null, state: 'stopped' }]);
    expect((await corral(data, ['ha', 'status'])).stdout).toMatch(/bare: stopped, priority 7, no owner yet, group web, prefers h2,h3/);

    // this data dir's real fencer, given a deadline that is already due, fences (nothing to kill)
    await ensureFencer(haDir, { entry: FENCER_ENTRY });
    const link = new FencerLink(haDir);
    link.arm(monotonicMs() + 100, []);
    await waitFor('the fence record', () => readFenceRecord(haDir), 30_000);
    const refused = await corral(data, ['vm', 'start', 'bare']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/highly available and this host fenced its HA guests/);
    s = await status();
    expect(s.startBlocker).toMatch(/fenced/);
    expect(s.fence).toMatchObject({ killed: [] });
    // a VM that is not HA is not held back
    expect((await corral(data, ['vm', 'set', 'bare', '--ha', 'off'])).code).toBe(0);
    expect((await status()).vms).toEqual([]);
    expect((await corral(data, ['vm', 'set', 'bare', '--ha', 'on'])).code).toBe(0);

    link.clearFence();
    await waitFor('the fence to be cleared', () => !readFenceRecord(haDir), 30_000);
    link.close();
    const started = await corral(data, ['vm', 'start', 'bare']);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
  });

  it('tells a fenced guest why it stopped, and does not restart it while fenced', async () => {
    expect((await corral(data, ['vm', 'set', 'bare', '--restart', 'always'])).code).toBe(0);
    const { pid } = JSON.parse((await corral(data, ['vm', 'show', 'bare', '--json'])).stdout) as { pid: number };
    const guard = { vm: 'bare', pid, startTime: processStartTime(pid)! };
    const link = new FencerLink(haDir);
    link.arm(monotonicMs() + 300, [guard]);
    await waitFor('the fencer to kill the guest', () => processStartTime(pid) !== guard.startTime, 30_000);
    link.close();
    let lastSeen: string[] = [];
    const events = await waitFor(
      'the fence and the refused restart in the events',
      async () => {
        const evs = JSON.parse((await corral(data, ['events', '--json'])).stdout) as EventRecord[];
        const mine = evs.filter((e) => e.vmName === 'bare').map((e) => e.message);
        lastSeen = mine;
        const done =
          mine.some((m) => /^Fenced at .*the fencer killed it/.test(m)) && mine.some((m) => /^Not started: this host fenced/.test(m));
        return done ? mine : null;
      },
      120_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the events of "bare":\n${lastSeen.join('\n')}`);
    });
    expect(events.join('\n')).toMatch(/QEMU was killed/);
    const vm = JSON.parse((await corral(data, ['vm', 'show', 'bare', '--json'])).stdout) as { state: string; pid: number | null };
    expect(vm.pid).toBeNull();
  });

  it('turns load balancing on and off, and a dry run says why nothing moves', async () => {
    const dry = await corral(data, ['ha', 'balance', '--dry-run']);
    expect(dry.stdout).toMatch(/Load balancing: off\nNothing would move: this host is not in a cluster/);
    expect((await corral(data, ['ha', 'balance', '--on'])).stdout).toMatch(/Load balancing: on/);
    expect((await status()).balance).toBe(true);
    expect((await corral(data, ['ha', 'balance', '--off', '--json'])).stdout).toMatch(/"enabled": false/);
    const usage = await corral(data, ['ha', 'balance']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of --dry-run, --on or --off/);
  });
});
