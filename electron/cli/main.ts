// `corral`: runs the headless host (`corral serve`) or talks to the running host over its
// control socket. Failures print one line and exit non-zero (2 for usage errors).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ArgsIn, PortForward, VmInfo } from '../core/api/contract.js';
import { MiB, parseSize } from '../core/api/units.js';
import { dataLayout, defaultDataDir } from '../core/paths.js';
import { ApiCallError, ControlClient, NoHostError } from './client.js';
import { runConsole } from './console.js';
import { eventLine, hostText, statsText, vmDetails, vmTable } from './format.js';

class UsageError extends Error {}

const USAGE = `Usage:
  corral serve [--data DIR] [--listen HOST:PORT]
  corral [--data DIR] vm create NAME [--cpus N] [--memory SIZE] [--disk SIZE]
         [--disk-image PATH [--disk-format qcow2|raw]] [--iso PATH]
         [--kernel PATH] [--initrd PATH] [--append ARGS]
         [--forward tcp:HOSTPORT:GUESTPORT]... [--restart never|on-failure|always]
  corral [--data DIR] vm list [--json]
  corral [--data DIR] vm show NAME [--json]
  corral [--data DIR] vm start|stop|kill|reset|pause|resume NAME
  corral [--data DIR] vm set NAME [--restart never|on-failure|always] [--max-crashes N --window DURATION]
         [--liveness agent|tcp:PORT|http:PORT/PATH|off] [--guest-watchdog on|off]
         [--cpus N] [--max-cpus N] [--memory SIZE] [--max-memory SIZE] [--cpu-weight N] [--cpu-cap PERCENT]
         [--io-bps N --io-iops N] [--disk-size SIZE] [--live]
  corral [--data DIR] vm stats NAME [--json]
  corral [--data DIR] host [--json]
  corral [--data DIR] vm delete NAME [--keep-disks]
  corral [--data DIR] vm console NAME      serial console here; Ctrl-] leaves
  corral [--data DIR] vm screenshot NAME FILE.png
  corral [--data DIR] vm log NAME [--follow]
  corral [--data DIR] events [--follow] [--json]

The data dir defaults to $CORRAL_DATA, else $XDG_DATA_HOME/corral (~/.local/share/corral).`;

const OPTIONS = {
  data: { type: 'string' },
  listen: { type: 'string' },
  cpus: { type: 'string' },
  memory: { type: 'string' },
  disk: { type: 'string' },
  'disk-image': { type: 'string' },
  'disk-format': { type: 'string' },
  iso: { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  forward: { type: 'string', multiple: true },
  restart: { type: 'string' },
  'max-crashes': { type: 'string' },
  window: { type: 'string' },
  liveness: { type: 'string' },
  'guest-watchdog': { type: 'string' },
  'max-cpus': { type: 'string' },
  'max-memory': { type: 'string' },
  'cpu-weight': { type: 'string' },
  'cpu-cap': { type: 'string' },
  'io-bps': { type: 'string' },
  'io-iops': { type: 'string' },
  'disk-size': { type: 'string' },
  live: { type: 'boolean' },
  json: { type: 'boolean' },
  'keep-disks': { type: 'boolean' },
  follow: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type Opts = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // one line: parseArgs appends advice about positionals that does not fit our surface
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, ''));
  }
}

/** Which options each command accepts besides --data. */
const ALLOWED: Record<string, string[]> = {
  serve: ['listen'],
  'vm create': ['cpus', 'memory', 'disk', 'disk-image', 'disk-format', 'iso', 'kernel', 'initrd', 'append', 'forward', 'restart'],
  'vm list': ['json'],
  'vm show': ['json'],
  'vm start': [],
  'vm stop': ['timeout'],
  'vm kill': [],
  'vm reset': [],
  'vm pause': [],
  'vm resume': [],
  'vm set': [
    'restart',
    'max-crashes',
    'window',
    'liveness',
    'guest-watchdog',
    'cpus',
    'max-cpus',
    'memory',
    'max-memory',
    'cpu-weight',
    'cpu-cap',
    'io-bps',
    'io-iops',
    'disk-size',
    'live',
  ],
  'vm stats': ['json'],
  host: ['json'],
  'vm delete': ['keep-disks'],
  'vm console': [],
  'vm screenshot': [],
  'vm log': ['follow'],
  events: ['follow', 'json'],
};

export async function main(argv: string[]): Promise<number> {
  let client: ControlClient | null = null;
  try {
    const { values: o, positionals: pos } = parse(argv);
    if (o.help || pos.length === 0) {
      process.stdout.write(USAGE + '\n');
      return pos.length === 0 && !o.help ? 2 : 0;
    }
    if (o.version) {
      const { VERSION } = await import('../core/version.js');
      process.stdout.write(`corral ${VERSION}\n`);
      return 0;
    }
    const command = pos[0] === 'vm' ? `vm ${pos[1] ?? ''}` : pos[0]!;
    const allowed = ALLOWED[command];
    if (!allowed) throw new UsageError(`unknown command "${pos.slice(0, 2).join(' ')}"; see corral --help`);
    for (const key of Object.keys(o)) {
      if (key !== 'data' && !allowed.includes(key)) throw new UsageError(`option --${key} does not apply to "corral ${command}"`);
    }
    const args = pos.slice(command.startsWith('vm ') ? 2 : 1);
    const needName = command.startsWith('vm ') && command !== 'vm list';
    const arity = command === 'vm screenshot' ? 2 : 1;
    if (needName && args.length !== arity) {
      throw new UsageError(
        command === 'vm screenshot'
          ? 'usage: corral vm screenshot NAME FILE.png'
          : `"corral ${command}" takes one VM name${args.length > 1 ? ' (quote names with spaces)' : ''}`,
      );
    }
    if (!needName && args.length) throw new UsageError(`unexpected argument "${args[0]}"`);
    const name = args[0] ?? '';
    const dataDir = o.data ? path.resolve(o.data) : defaultDataDir();

    if (command === 'serve') {
      const { runServe } = await import('../server/serve.js');
      return await runServe({ dataDir, listen: o.listen });
    }

    client = await ControlClient.connect(dataLayout(dataDir).controlSocket, dataDir);
    return await run(client, command, name, o, args[1]);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`corral: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ApiCallError || err instanceof NoHostError) {
      process.stderr.write(`corral: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`corral: ${(err as Error).message}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

async function run(c: ControlClient, command: string, name: string, o: Opts, file?: string): Promise<number> {
  const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
  switch (command) {
    case 'vm create': {
      const vm = await c.call('vm.create', createArgs(name, o));
      out(`Created "${vm.name}". Start it: corral vm start ${shellQuote(vm.name)}`);
      return 0;
    }
    case 'vm list': {
      const vms = await c.call('vm.list', {});
      if (o.json) json(vms.map(showJson));
      else out(vmTable(vms));
      return 0;
    }
    case 'vm show': {
      const vm = await c.call('vm.get', { vm: name });
      if (o.json) json(showJson(vm));
      else out(vmDetails(vm));
      return 0;
    }
    case 'vm start':
    case 'vm kill':
    case 'vm reset':
    case 'vm pause':
    case 'vm resume': {
      const op = command.slice(3) as 'start' | 'kill' | 'reset' | 'pause' | 'resume';
      const vm = await c.call(`vm.${op}`, { vm: name });
      out(`${vm.name}: ${vm.state}`);
      return 0;
    }
    case 'vm stop': {
      const timeoutSec = o.timeout === undefined ? undefined : intArg('timeout', o.timeout);
      process.stderr.write(`Stopping ${name} (ACPI power button)…\n`);
      const vm = await c.call('vm.stop', { vm: name, ...(timeoutSec === undefined ? {} : { timeoutSec }) });
      out(`${vm.name}: ${vm.state}${vm.lastExit ? ` (${vm.lastExit.reason})` : ''}`);
      return 0;
    }
    case 'vm set': {
      const args = setArgs(name, o);
      const settings = Object.keys(args).filter((k) => k !== 'vm' && k !== 'live');
      let vm = settings.length ? await c.call('vm.update', args) : await c.call('vm.get', { vm: name });
      if (o['disk-size'] !== undefined) {
        if (/^\s*\d+\s*$/.test(o['disk-size'])) throw new UsageError(`--disk-size needs a unit, e.g. ${o['disk-size'].trim()}G`);
        vm = await c.call('vm.resizeDisk', { vm: name, size: sizeArg('disk-size', o['disk-size'], 'b') });
      }
      out(`Updated "${vm.name}"${vm.pending.length ? `; at the next boot: ${vm.pending.join(', ')}` : ''}`);
      return 0;
    }
    case 'vm stats': {
      const vm = await c.call('vm.get', { vm: name });
      const samples = await c.call('vm.stats', { vm: name });
      if (o.json) json(samples.at(-1) ?? null);
      else out(statsText(vm, samples.at(-1) ?? null));
      return 0;
    }
    case 'host': {
      const [info, res] = await Promise.all([c.call('host.info', {}), c.call('host.resources', {})]);
      if (o.json) json({ ...res, qemu: info.qemu, dataDir: info.dataDir, version: info.version });
      else out(hostText(info, res));
      return 0;
    }
    case 'vm delete': {
      await c.call('vm.delete', { vm: name, keepDisks: Boolean(o['keep-disks']) });
      out(`Deleted "${name}"`);
      return 0;
    }
    case 'vm console':
      return await runConsole(c, name);
    case 'vm screenshot': {
      const { png } = await c.call('vm.screenshot', { vm: name });
      const target = path.resolve(file!);
      await writeFile(target, Buffer.from(png, 'base64'));
      out(`Saved the screen of "${name}" to ${target}`);
      return 0;
    }
    case 'vm log':
      return await showLog(c, name, Boolean(o.follow));
    case 'events':
      return await showEvents(c, Boolean(o.follow), Boolean(o.json));
  }
  throw new UsageError(`unknown command "${command}"`);
}

/** The stable shape of `vm show --json` (scripts depend on it). */
function showJson(v: VmInfo) {
  return {
    name: v.name,
    id: v.id,
    state: v.state,
    pid: v.pid,
    restarts: v.restarts,
    lastExit: v.lastExit && {
      code: v.lastExit.code,
      signal: v.lastExit.signal,
      reason: v.lastExit.reason,
      at: new Date(v.lastExit.at).toISOString(),
    },
    stateSince: new Date(v.stateSince).toISOString(),
    restartAt: v.restartAt && new Date(v.restartAt).toISOString(),
    config: v.config,
  };
}

function createArgs(name: string, o: Opts): ArgsIn<'vm.create'> {
  if (o.disk && o['disk-image']) throw new UsageError('use either --disk SIZE (new disk) or --disk-image PATH (existing), not both');
  if (o['disk-format'] && !o['disk-image']) throw new UsageError('--disk-format applies to --disk-image');
  const a: ArgsIn<'vm.create'> = { name };
  if (o.cpus !== undefined) a.cpus = intArg('cpus', o.cpus);
  if (o.memory !== undefined) a.memoryMiB = memoryArg(o.memory);
  if (o.disk !== undefined) {
    if (/^\s*\d+\s*$/.test(o.disk)) throw new UsageError(`--disk needs a unit, e.g. ${o.disk.trim()}G`);
    a.disk = { size: sizeArg('disk', o.disk, 'b') };
  }
  if (o['disk-image'] !== undefined) {
    const fmt = o['disk-format'];
    if (fmt !== undefined && fmt !== 'qcow2' && fmt !== 'raw') throw new UsageError(`--disk-format must be qcow2 or raw, not "${fmt}"`);
    a.disk = { image: path.resolve(o['disk-image']), ...(fmt ? { format: fmt } : {}) };
  }
  for (const key of ['iso', 'kernel', 'initrd'] as const) {
    const v = o[key];
    if (v !== undefined) a[key] = path.resolve(v);
  }
  if (o.append !== undefined) a.append = o.append;
  if (o.forward) a.forwards = o.forward.map(forwardArg);
  if (o.restart !== undefined) a.restart = restartArg(o.restart);
  return a;
}

function setArgs(name: string, o: Opts): ArgsIn<'vm.update'> {
  const a: ArgsIn<'vm.update'> = { vm: name };
  if (o.restart !== undefined) a.restart = restartArg(o.restart);
  if (o['max-crashes'] !== undefined) a.maxCrashes = intArg('max-crashes', o['max-crashes']);
  if (o.window !== undefined) a.crashWindowSec = durationArg('window', o.window);
  if (o.liveness !== undefined) a.liveness = livenessArg(o.liveness);
  if (o['guest-watchdog'] !== undefined) {
    const g = o['guest-watchdog'];
    if (g !== 'on' && g !== 'off') throw new UsageError(`--guest-watchdog must be on or off, not "${g}"`);
    a.guestWatchdog = g === 'on' ? 'restart' : 'off';
  }
  if (o.cpus !== undefined) a.cpus = intArg('cpus', o.cpus);
  if (o['max-cpus'] !== undefined) a.maxCpus = intArg('max-cpus', o['max-cpus']);
  if (o.memory !== undefined) a.memoryMiB = memoryArg(o.memory);
  if (o['max-memory'] !== undefined) a.maxMemoryMiB = memoryArg(o['max-memory']);
  if (o['cpu-weight'] !== undefined) a.cpuWeight = o['cpu-weight'] === 'default' ? null : intArg('cpu-weight', o['cpu-weight']);
  if (o['cpu-cap'] !== undefined) a.cpuCapPercent = o['cpu-cap'] === 'off' ? null : intArg('cpu-cap', o['cpu-cap'].replace(/%$/, ''));
  if (o['io-bps'] !== undefined) a.ioBps = o['io-bps'] === 'off' ? null : sizeArg('io-bps', o['io-bps'], 'b');
  if (o['io-iops'] !== undefined) a.ioIops = o['io-iops'] === 'off' ? null : intArg('io-iops', o['io-iops']);
  if (o.live) a.live = true;
  if (Object.keys(a).length === 1 && o['disk-size'] === undefined) throw new UsageError('nothing to set; see corral --help');
  return a;
}

function restartArg(v: string): 'never' | 'on-failure' | 'always' {
  if (!['never', 'on-failure', 'always'].includes(v)) throw new UsageError(`--restart must be never, on-failure or always, not "${v}"`);
  return v as 'never' | 'on-failure' | 'always';
}

function livenessArg(v: string): ArgsIn<'vm.update'>['liveness'] {
  if (v === 'off' || v === 'none') return null;
  if (v === 'agent') return { kind: 'agent' };
  const tcp = /^tcp:(\d+)$/.exec(v);
  if (tcp) return { kind: 'tcp', port: Number(tcp[1]) };
  const http = /^http:(\d+)(\/\S*)?$/.exec(v);
  if (http) return { kind: 'http', port: Number(http[1]), path: http[2] ?? '/' };
  throw new UsageError(`--liveness must be agent, tcp:PORT, http:PORT/PATH or off, not "${v}"`);
}

/** "15m", "900s", "1h", or seconds. */
function durationArg(opt: string, v: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--${opt} must be a duration like 15m, 900s or 1h, not "${v}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

function memoryArg(v: string): number {
  const bytes = sizeArg('memory', v, 'm');
  if (bytes % MiB) throw new UsageError(`--memory must be a whole number of MiB, not ${v}`);
  return bytes / MiB;
}

function forwardArg(spec: string): PortForward {
  const m = /^(tcp|udp):(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)$/.exec(spec);
  if (!m) throw new UsageError(`--forward must look like tcp:HOSTPORT:GUESTPORT, not "${spec}"`);
  const port = (s: string) => {
    const n = Number(s);
    if (n < 1 || n > 65535) throw new UsageError(`--forward ${spec}: port ${s} is out of range 1-65535`);
    return n;
  };
  return { proto: m[1] as 'tcp' | 'udp', hostAddr: m[2] ?? '127.0.0.1', hostPort: port(m[3]!), guestPort: port(m[4]!) };
}

function intArg(opt: string, text: string): number {
  if (!/^\s*-?\d+\s*$/.test(text)) throw new UsageError(`--${opt} must be a whole number, not "${text}"`);
  return Number(text);
}

function sizeArg(opt: string, text: string, unit: 'b' | 'm'): number {
  try {
    return parseSize(text, unit);
  } catch (err) {
    throw new UsageError(`--${opt}: ${(err as Error).message}`);
  }
}

function shellQuote(s: string): string {
  return /^[\w.-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

async function showLog(c: ControlClient, name: string, follow: boolean): Promise<number> {
  const vm = await c.call('vm.get', { vm: name });
  if (follow) {
    c.on('serial.data', (p) => p.vmId === vm.id && process.stdout.write(Buffer.from(p.data, 'base64')));
    await c.call('events.subscribe', {});
    c.on('vm.changed', (v) => {
      if (v.id === vm.id && v.state === 'running') void c.call('serial.attach', { vm: vm.id }).catch(() => undefined);
    });
  }
  const { data } = await c.call('serial.log', { vm: vm.id, tailBytes: 16 * 1024 * 1024 });
  process.stdout.write(Buffer.from(data, 'base64'));
  if (!follow) return 0;
  if (vm.state === 'running' || vm.state === 'paused') await c.call('serial.attach', { vm: vm.id }).catch(() => undefined);
  return await new Promise<number>((resolve) => c.onClose(() => resolve(0)));
}

async function showEvents(c: ControlClient, follow: boolean, asJson: boolean): Promise<number> {
  const print = (e: Parameters<typeof eventLine>[0]) => process.stdout.write((asJson ? JSON.stringify(e) : eventLine(e)) + '\n');
  if (follow) {
    c.on('event.logged', print);
    await c.call('events.subscribe', {});
  }
  const past = (await c.call('events.list', { limit: follow ? 20 : 200 })).reverse();
  if (asJson && !follow)
    process.stdout.write(JSON.stringify(past, null, 2) + '\n'); // one array; --follow streams JSON lines
  else past.forEach(print);
  if (!follow) return 0;
  return await new Promise<number>((resolve) => c.onClose(() => resolve(0)));
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
