// The whole supervisor (lifecycle, supervision, reattach, journal, real SQLite) on the fake
// QEMU and a fake clock, driven by scenarios in the style of Proxmox's HA manager tests: each
// file in supervisor-scenarios/ lists timed actions, then the exact log they must produce.
//
// Scenario file format (# starts a comment):
//   config [restart=never|on-failure|always] [maxCrashes=N] [window=<time>] [liveness=agent]
//          [startup=<time>] [watchdog=restart|reset|poweroff|pause] [tpm=on] [autostart=ORDER]
//          [delay=<time>] [stop-timeout=<time>]
//   vm NAME [the same options]   several VMs instead of the one "guest" of config: actions then
//                                name theirs (NAME:verb, the first VM without), log lines say [NAME]
//   <time> <action> [args]      time absolute from the start: 1m30s, 2s500ms, 0s
//   expect                       then the log, one line per entry: +<time> <what>
// Actions, by the user: start | stop [SEC] | kill | pause | resume | reset | set key=value
//   by the guest: crash SIGNAL | exit STATUS | panic | poweroff | watchdog | hang-qemu |
//     hang-guest | ignore-acpi | service up|down (answers the liveness probe or not) |
//     tpm-dies (the VM's swtpm ends, QEMU runs on) | share-dies TAG (a share's virtiofsd ends)
//   by the host: host-down (detaches, as a quit leaving guests running) | host-up (a new host
//     reattaches) | host-restart | host-shutdown [SEC] (stops every guest, SEC overriding each
//     VM's stop timeout) | host-boot (a host up after the machine booted: then it autostarts) |
//     autostart (the current host runs its autostart) | launch-fails WHY (the VM's next launch)
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
  vms: Array<{ name: string; config: Partial<VmConfig> }>;
  actions: Array<{ at: number; verb: string; args: string[]; line: number }>;
  expected: string[];
}

function options(opts: string[], line: number): Partial<VmConfig> {
  const config: Partial<VmConfig> = {};
  for (const opt of opts) {
    const [k, v] = opt.split('=') as [string, string];
    if (k === 'restart') config.restart = v as VmConfig['restart'];
    else if (k === 'maxCrashes') config.maxCrashes = Number(v);
    else if (k === 'window') config.crashWindowSec = parseTime(v) / 1000;
    else if (k === 'liveness') config.liveness = { kind: 'agent' };
    else if (k === 'startup') config.livenessStartupSec = parseTime(v) / 1000;
    else if (k === 'watchdog') config.guestWatchdog = v as VmConfig['guestWatchdog'];
    else if (k === 'autostart') Object.assign(config, { autostart: true, autostartOrder: Number(v) });
    else if (k === 'delay') config.autostartDelaySec = parseTime(v) / 1000;
    else if (k === 'stop-timeout') config.stopTimeoutSec = parseTime(v) / 1000;
    else if (k === 'tpm') config.tpm = v === 'on';
    else throw new Error(`line ${line}: unknown option ${opt}`);
  }
  return config;
}

function parse(text: string): Scenario {
  const sc: Scenario = { vms: [], actions: [], expected: [] };
  let config: Partial<VmConfig> = {};
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
    else if (head === 'config') config = options(rest, i + 1);
    else if (head === 'vm') sc.vms.push({ name: rest[0]!, config: options(rest.slice(1), i + 1) });
    else sc.actions.push({ at: parseTime(head!), verb: rest[0]!, args: rest.slice(1), line: i + 1 });
  }
  if (!sc.vms.length) sc.vms.push({ name: 'guest', config });
  return sc;
}

/** One simulated machine: a store, the fake QEMU (its processes outlive hosts) and a clock. */
class World {
  readonly clock = new FakeClock(1_700_000_000_000);
  readonly t0 = this.clock.now();
  readonly log: string[] = [];
  readonly qemu = new FakeQemu({ clock: this.clock, log: (l, vmId) => this.write(l, vmId) });
  readonly dir = tempDir('corral-sup-');
  // a real SQLite store, in memory: the scenarios test decisions, not durability
  readonly db: Db = openDb(':memory:');
  readonly repo = new VmRepo(this.db);
  readonly events = new EventRepo(this.db);
  host: Vms | null = null;
  /** VM names by id; log lines name the VM when there are several. */
  readonly names = new Map<string, string>();

  write(line: string, vmId?: string | null): void {
    const who = this.names.size > 1 && vmId ? `[${this.names.get(vmId)}] ` : '';
    this.log.push(`+${fmt(this.clock.now() - this.t0)} ${who}${line}`);
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
    host.journal.on('logged', (ev) => this.write(logLine(ev), ev.vmId));
    host.journal.on('notify', (n) => this.write(`notify ${n.level}: ${n.title}`, n.vmId));
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
  const ids = new Map<string, string>();
  for (const { name, config } of sc.vms) {
    const vm = await host.service.create({ name, disk: null, ...CONFIG_DEFAULTS, ...config });
    ids.set(name, vm.id);
    w.names.set(vm.id, name);
  }
  w.log.length = 0; // the scenario starts with the VMs created
  /** User calls run in the background (a stop waits for the guest); failures are logged. */
  const user = (p: Promise<unknown>, vmId?: string) => void p.catch((err: Error) => w.write(`refused: ${err.message}`, vmId));
  const autostart = (h: Vms) =>
    user(
      h.autostart().then((r) => {
        const list = (l: string[]) => (l.length ? l.join(', ') : '-');
        w.write(`host: autostart done: started ${list(r.started)}; failed ${list(r.failed)}; skipped ${list(r.skipped)}`);
      }),
    );
  for (const { at, verb: word, args, line } of sc.actions) {
    await w.clock.advanceTo(w.t0 + at);
    const [named, verb] = word.includes(':') ? (word.split(':') as [string, string]) : [sc.vms[0]!.name, word];
    const vmId = ids.get(named);
    if (!vmId) throw new Error(`line ${line}: no VM named ${named}`);
    const proc = () => {
      const p = w.qemu.current(vmId);
      if (!p) throw new Error(`line ${line}: no QEMU is running for ${named}`);
      return p;
    };
    const h = w.host;
    const need = () => {
      if (!h) throw new Error(`line ${line}: no host is up`);
      return h;
    };
    switch (verb) {
      case 'start':
        user(need().lifecycle.start(vmId), vmId);
        break;
      case 'stop':
        user(need().lifecycle.stop(vmId, args[0] ? Number(args[0]) : 60), vmId);
        break;
      case 'kill':
      case 'pause':
      case 'resume':
      case 'reset':
        user(need().lifecycle[verb](vmId), vmId);
        break;
      case 'set': {
        const [k, v] = args[0]!.split('=') as [string, string];
        const value = /^\d+$/.test(v) ? Number(v) : v === 'true' || v === 'false' ? v === 'true' : v;
        user(need().service.update({ vm: vmId, live: false, [k]: value }), vmId);
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
      case 'share-dies':
        proc().shareDies(args[0] ?? 'share');
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
        user(need().lifecycle.stopAll(args[0] ? Number(args[0]) : undefined));
        break;
      case 'host-boot':
        w.write('host: up (machine booted)');
        autostart(await w.hostUp());
        break;
      case 'autostart':
        autostart(need());
        break;
      case 'launch-fails':
        w.qemu.failLaunchOf.set(vmId, args.join(' ') || 'no reason');
        break;
      case 'wait':
        break;
      default:
        throw new Error(`line ${line}: unknown action ${verb}`);
    }
    await settle();
    // never two QEMUs for one VM, whatever happened
    expect(w.qemu.violations).toEqual([]);
    for (const id of ids.values()) expect(w.qemu.processes.filter((p) => p.alive && p.vmId === id).length).toBeLessThanOrEqual(1);
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
