// The whole supervisor (lifecycle, supervision, reattach, journal, real SQLite) on the fake
// QEMU and a fake clock, driven by scenarios in the style of Proxmox's HA manager tests: each
// file in supervisor-scenarios/ lists timed actions, then the exact log they must produce.
//
// Scenario file format (# starts a comment):
//   config [restart=never|on-failure|always] [maxCrashes=N] [window=<time>] [liveness=agent]
//          [startup=<time>] [watchdog=restart|reset|poweroff|pause] [tpm=on]
//   <time> <action> [args]      time absolute from the start: 1m30s, 2s500ms, 0s
//   expect                       then the log, one line per entry: +<time> <what>
// Actions, by the user: start | stop [SEC] | kill | pause | resume | reset | set key=value
//   by the guest: crash SIGNAL | exit STATUS | panic | poweroff | watchdog | hang-qemu |
//     hang-guest | ignore-acpi | service up|down (answers the liveness probe or not) |
//     tpm-dies (the VM's swtpm ends, QEMU runs on)
//   by the host: host-down (detaches, as a quit leaving guests running) | host-up (a new host
//     reattaches) | host-restart | host-shutdown [SEC] (stops every guest) | launch-fails WHY
//   wait (only lets time pass)
// Set UPDATE_SCENARIOS=1 to print the actual logs instead of comparing (then review them).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, type EventRecord, type VmConfig } from '../../electron/core/api/contract';
import { EventRepo } from '../../electron/core/store/event-repo';
import { openDb, type Db } from '../../electron/core/store/db';
import { VmRepo } from '../../electron/core/store/vm-repo';
import { PoolRepo } from '../../electron/core/store/pool-repo';
import { Vms } from '../../electron/core/vms/index';
import { Pools } from '../../electron/core/vms/pools';
import { tempDir } from '../helpers';
import { formatTime as fmt, parseTime } from '../support/scenario-time';
import { FakeClock, settle } from '../support/fake-clock';
import { FakeQemu } from '../support/fake-qemu';

const DIR = path.join(__dirname, 'supervisor-scenarios');

interface Scenario {
  config: Partial<VmConfig>;
  actions: Array<{ at: number; verb: string; args: string[]; line: number }>;
  expected: string[];
}

function parse(text: string): Scenario {
  const sc: Scenario = { config: {}, actions: [], expected: [] };
  let expecting = false;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (expecting) {
      sc.expected.push(line.replace(/\s+/, ' '));
      continue;
    }
    const [head, ...rest] = line.split(/\s+/);
    if (head === 'expect') expecting = true;
    else if (head === 'config') {
      for (const opt of rest) {
        const [k, v] = opt.split('=') as [string, string];
        if (k === 'restart') sc.config.restart = v as VmConfig['restart'];
        else if (k === 'maxCrashes') sc.config.maxCrashes = Number(v);
        else if (k === 'window') sc.config.crashWindowSec = parseTime(v) / 1000;
        else if (k === 'liveness') sc.config.liveness = { kind: 'agent' };
        else if (k === 'startup') sc.config.livenessStartupSec = parseTime(v) / 1000;
        else if (k === 'watchdog') sc.config.guestWatchdog = v as VmConfig['guestWatchdog'];
        else if (k === 'tpm') sc.config.tpm = v === 'on';
        else throw new Error(`line ${i + 1}: unknown option ${opt}`);
      }
    } else sc.actions.push({ at: parseTime(head!), verb: rest[0]!, args: rest.slice(1), line: i + 1 });
  }
  return sc;
}

/** One simulated machine: a store, the fake QEMU (its processes outlive hosts) and a clock. */
class World {
  readonly clock = new FakeClock(1_700_000_000_000);
  readonly t0 = this.clock.now();
  readonly log: string[] = [];
  readonly qemu = new FakeQemu({ clock: this.clock, log: (l) => this.write(l) });
  readonly dir = tempDir('corral-sup-');
  // a real SQLite store, in memory: the scenarios test decisions, not durability
  readonly db: Db = openDb(':memory:');
  readonly repo = new VmRepo(this.db);
  readonly events = new EventRepo(this.db);
  host: Vms | null = null;
  vmId = '';

  write(line: string): void {
    this.log.push(`+${fmt(this.clock.now() - this.t0)} ${line}`);
  }

  async hostUp(): Promise<Vms> {
    const host = new Vms({
      vms: this.repo,
      events: this.events,
      driver: this.qemu,
      clock: this.clock,
      random: () => 0.5, // no jitter
      vmDir: (id) => path.join(this.dir, 'vms', id),
      pools: new Pools(new PoolRepo(this.db), {
        root: this.dir,
        images: path.join(this.dir, 'images'),
        vmsDir: path.join(this.dir, 'vms'),
      }),
      hostMemoryBytes: () => 64 * 1024 ** 3,
      probes: (_liveness, _forwards, vmId) => async () => this.qemu.current(vmId)?.serviceUp ?? false,
    });
    host.journal.on('logged', (ev) => this.write(logLine(ev)));
    host.journal.on('notify', (n) => this.write(`notify ${n.level}: ${n.title}`));
    this.host = host;
    await host.reattachAll();
    return host;
  }

  hostDown(): void {
    this.host?.detachAll();
    this.host?.journal.removeAllListeners();
    this.host = null;
  }

  close(): void {
    this.hostDown();
    this.db.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function logLine(ev: EventRecord): string {
  const why = ev.reason ? ` (${ev.reason})` : '';
  const report = ev.report ? ' +report' : '';
  if (ev.kind === 'state' && ev.from !== ev.to) return `${ev.from} → ${ev.to}${why}: ${ev.message}${report}`;
  if (ev.kind === 'state') return `note${why}: ${ev.message}`;
  return `${ev.kind}: ${ev.message}`;
}

async function play(sc: Scenario, w: World): Promise<void> {
  const host = await w.hostUp();
  const vm = await host.service.create({ name: 'guest', disk: null, ...CONFIG_DEFAULTS, ...sc.config });
  w.vmId = vm.id;
  w.log.length = 0; // the scenario starts with the VM created
  /** User calls run in the background (a stop waits for the guest); failures are logged. */
  const user = (p: Promise<unknown>) => void p.catch((err: Error) => w.write(`refused: ${err.message}`));
  const proc = () => {
    const p = w.qemu.current(w.vmId);
    if (!p) throw new Error('no QEMU is running');
    return p;
  };
  for (const { at, verb, args, line } of sc.actions) {
    await w.clock.advanceTo(w.t0 + at);
    const h = w.host;
    const need = () => {
      if (!h) throw new Error(`line ${line}: no host is up`);
      return h;
    };
    switch (verb) {
      case 'start':
        user(need().lifecycle.start(w.vmId));
        break;
      case 'stop':
        user(need().lifecycle.stop(w.vmId, args[0] ? Number(args[0]) : 60));
        break;
      case 'kill':
      case 'pause':
      case 'resume':
      case 'reset':
        user(need().lifecycle[verb](w.vmId));
        break;
      case 'set': {
        const [k, v] = args[0]!.split('=') as [string, string];
        const value = /^\d+$/.test(v) ? Number(v) : v === 'true' || v === 'false' ? v === 'true' : v;
        user(need().service.update({ vm: w.vmId, live: false, [k]: value }));
        break;
      }
      case 'crash':
        proc().kill(args[0] as NodeJS.Signals);
        break;
      case 'exit':
        proc().exit({ code: Number(args[0]), signal: null });
        break;
      case 'panic':
      case 'poweroff':
        proc()[verb]();
        break;
      case 'watchdog':
        proc().watchdog('pause');
        break;
      case 'hang-qemu':
        proc().frozen = true;
        break;
      case 'hang-guest':
      case 'service':
        proc().serviceUp = verb === 'service' && args[0] === 'up';
        break;
      case 'tpm-dies':
        proc().tpmDies();
        break;
      case 'ignore-acpi':
        proc().ignoresAcpi = true;
        break;
      case 'host-down':
        w.hostDown();
        w.write('host: down (guests keep running)');
        break;
      case 'host-up':
        w.write('host: up');
        await w.hostUp();
        break;
      case 'host-restart':
        w.hostDown();
        w.write('host: restarted');
        await w.hostUp();
        break;
      case 'host-shutdown':
        w.write('host: stopping every guest');
        user(need().lifecycle.stopAll(args[0] ? Number(args[0]) : 60));
        break;
      case 'launch-fails':
        w.qemu.failNextLaunch = args.join(' ') || 'no reason';
        break;
      case 'wait':
        break;
      default:
        throw new Error(`line ${line}: unknown action ${verb}`);
    }
    await settle();
    // never two QEMUs for one VM, whatever happened
    expect(w.qemu.violations).toEqual([]);
    expect(w.qemu.processes.filter((p) => p.alive).length).toBeLessThanOrEqual(1);
  }
  await w.clock.advanceTo(w.clock.now() + 1);
}

const files = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.scenario'))
  .sort();

describe('supervisor scenarios (fake QEMU, fake clock)', () => {
  let world: World | null = null;
  afterEach(() => world?.close());

  it('has the scenarios', () => expect(files.length).toBeGreaterThanOrEqual(16));

  for (const file of files) {
    it(file.replace(/\.scenario$/, ''), async () => {
      const sc = parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
      world = new World();
      await play(sc, world);
      if (process.env.UPDATE_SCENARIOS) {
        console.log(`--- ${file}\n${world.log.join('\n')}`);
        return;
      }
      expect(world.log).toEqual(sc.expected);
    });
  }
});
