// The CLI's command table: usage, help, parsing and usage errors are generated from it, without a host.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GiB } from '../../electron/core/api/units';
import { COMMANDS } from '../../electron/cli/commands/index';
import { main } from '../../electron/cli/main';
import { commandHelp, help, parse, synopsis, usage, type Parsed } from '../../electron/cli/table';

const byWords = (words: string) => COMMANDS.find((c) => c.words === words)!;

function run(argv: string[]): Extract<Parsed, { do: 'run' }> {
  const p = parse(COMMANDS, argv);
  if (p.do !== 'run') throw new Error(`expected a command, got ${p.do}`);
  return p;
}

/** The command words each synopsis line stands for ("vm start|kill NAME" is two). */
function commandsIn(lines: string[]): string[] {
  return lines
    .filter((l) => l.startsWith('corral '))
    .flatMap((l) => {
      const words = l
        .replace('corral [--data DIR] ', '')
        .split(' ')
        .filter((w, i, all) => all.slice(0, i + 1).every((x) => /^[a-z|]+$/.test(x)));
      const last = words.pop()!;
      return last.split('|').map((w) => [...words, w].join(' '));
    });
}

/** The options a help text lists in its Options section. */
function listedOptions(text: string): string[] {
  const section = text.slice(text.indexOf('\nOptions:\n'));
  return [...section.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]!);
}

describe('usage and help from the table', () => {
  it('the usage text has every command and every option of it', () => {
    expect(commandsIn(synopsis(COMMANDS)).sort()).toEqual(COMMANDS.map((c) => c.words).sort());
    for (const c of COMMANDS) {
      const own = synopsis([c]).join(' ');
      for (const name of Object.keys(c.options)) expect(own).toContain(`[--${name}`);
    }
    expect(synopsis(COMMANDS).every((l) => l.length <= 110)).toBe(true);
    expect(usage(COMMANDS)).toContain('vm start|kill|reset|pause|resume NAME');
  });

  it('the README lists the commands exactly as the usage text does', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const block = /```\n(corral \[--data DIR\] serve[\s\S]*?)```/.exec(readme)?.[1];
    expect(block?.trimEnd()).toBe(synopsis(COMMANDS).join('\n'));
  });

  it('corral help lists every command with its one-line summary', () => {
    const text = help(COMMANDS, []);
    const escape = (t: string) => t.replace(/[()[\]|.$^*+?]/g, '\\$&');
    for (const c of COMMANDS) {
      expect(text).toMatch(new RegExp(`^ {2}${escape([c.words, ...c.args].join(' '))} +${escape(c.summary)}$`, 'm'));
    }
    expect(help(COMMANDS, ['vm'])).not.toContain('serve');
  });

  it('a command help lists exactly its own options', () => {
    for (const c of COMMANDS) {
      expect(listedOptions(commandHelp(c)).sort()).toEqual([...Object.keys(c.options), 'data'].sort());
    }
    const set = commandHelp(byWords('vm set'));
    expect(set).toMatch(/^ {2}--window DURATION +the crash-loop window/m);
    expect(set).not.toContain('--forward');
    expect(commandHelp(byWords('vm create'))).toMatch(/--forward tcp:HOSTPORT:GUESTPORT\n.*\(repeatable\)/);
  });

  it('help is reached as corral help CMD, CMD --help and CMD -h', () => {
    const text = commandHelp(byWords('vm set'));
    for (const argv of [
      ['help', 'vm', 'set'],
      ['vm', 'set', '--help'],
      ['vm', 'set', 'x', '-h'],
      ['--data', '/d', 'help', 'vm', 'set'],
    ]) {
      expect(parse(COMMANDS, argv)).toEqual({ do: 'print', text, code: 0 });
    }
    expect(parse(COMMANDS, [])).toMatchObject({ do: 'print', code: 2, text: usage(COMMANDS) });
    expect(parse(COMMANDS, ['--help'])).toMatchObject({ do: 'print', code: 0, text: usage(COMMANDS) });
    expect(parse(COMMANDS, ['vm', '--help'])).toMatchObject({ do: 'print', code: 0, text: help(COMMANDS, ['vm']) });
  });

  it('one option name means one kind of option in every command', () => {
    const seen = new Map<string, string>();
    for (const c of COMMANDS) {
      for (const [name, o] of Object.entries(c.options)) {
        const kind = `${o.value ? 'value' : 'switch'}${o.multiple ? ' list' : ''}`;
        expect(seen.get(name) ?? kind, `--${name} in ${c.words}`).toBe(kind);
        seen.set(name, kind);
      }
    }
  });
});

describe('parsing into API arguments', () => {
  it('vm create: sizes, paths and repeated forwards', () => {
    const p = run([
      'vm',
      'create',
      'my vm',
      '--memory',
      '2G',
      '--disk',
      '20G',
      '--forward',
      'tcp:2222:22',
      '--forward',
      'udp:0.0.0.0:5353:53:exposed',
      '--iso',
      'rel.iso',
      '--restart',
      'always',
    ]);
    expect(p.cmd.words).toBe('vm create');
    expect(p.args).toEqual(['my vm']);
    expect(p.api).toEqual({
      memoryMiB: 2048,
      disk: { size: 20 * GiB },
      forwards: [
        { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22, exposed: false },
        { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 5353, guestPort: 53, exposed: true },
      ],
      iso: path.resolve('rel.iso'),
      restart: 'always',
    });
    expect(run(['vm', 'create', 'x', '--memory', '512']).api).toEqual({ memoryMiB: 512 });
  });

  it('vm set: durations, on/off, off and default as null, percent, --live', () => {
    const p = run(['--data', 'd', 'vm', 'set', 'x', '--window', '15m', '--guest-watchdog', 'on', '--cpu-weight', 'default']);
    expect(p.api).toEqual({ crashWindowSec: 900, guestWatchdog: 'restart', cpuWeight: null });
    expect(p.data).toBe('d');
    const q = run([
      'vm',
      'set',
      'x',
      '--cpu-cap',
      '150%',
      '--io-bps',
      '50M',
      '--liveness',
      'http:80/health',
      '--live',
      '--disk-size',
      '40G',
    ]);
    expect(q.api).toEqual({
      cpuCapPercent: 150,
      ioBps: 50 * 1024 * 1024,
      liveness: { kind: 'http', port: 80, path: '/health' },
      live: true,
    });
    expect(q.values['disk-size']).toBe(40 * GiB); // its own call (vm.resizeDisk), not an update argument
    expect(run(['vm', 'set', 'x', '--liveness-startup', '600']).api).toEqual({ livenessStartupSec: 600 });
    expect(run(['vm', 'set', 'x', '--liveness-startup', '10m']).api).toEqual({ livenessStartupSec: 600 });
  });

  it('vm stop --timeout and the other commands take their own options', () => {
    expect(run(['vm', 'stop', 'x', '--timeout', '5']).values).toEqual({ timeout: 5 });
    expect(run(['events', '--follow', '--json']).values).toEqual({ follow: true, json: true });
    expect(run(['vm', 'screenshot', 'x', 'a.png']).args).toEqual(['x', 'a.png']);
  });
});

describe('usage errors', () => {
  it.each([
    [['vm', 'create', 'x', '--bogus'], /^Unknown option '--bogus'; see corral help vm create$/],
    [['vm', 'list', '--cpus', '2'], /^option --cpus does not apply to "corral vm list"; see corral help vm list$/],
    [['serve', '--forward', 'tcp:1:2'], /--forward does not apply to "corral serve"/],
    [['vm', 'start'], /^"corral vm start" needs NAME; see corral help vm start$/],
    [['vm', 'screenshot', 'x'], /needs FILE\.png/],
    [['vm', 'show', 'a', 'b'], /unexpected argument "b" \(quote names with spaces\)/],
    [['vm', 'create', 'x', '--memory', '2Q'], /^--memory: unknown size unit "Q"/],
    [['vm', 'create', 'x', '--memory', '1.5K'], /--memory must be a whole number of MiB/],
    [['vm', 'create', 'x', '--disk', '10'], /^--disk needs a unit, e.g\. 10G$/],
    [['vm', 'set', 'x', '--disk-size', '10'], /^--disk-size needs a unit/],
    [['vm', 'create', 'x', '--forward', 'tcp:2222:22', '--forward', 'ssh'], /--forward must look like tcp:HOSTPORT:GUESTPORT, not "ssh"/],
    [['vm', 'create', 'x', '--forward', 'tcp:70000:22'], /port 70000 is out of range/],
    [['vm', 'create', 'x', '--cpus', 'two'], /^--cpus must be a whole number, not "two"$/],
    [['vm', 'set', 'x', '--restart', 'sometimes'], /^--restart must be never, on-failure or always, not "sometimes"$/],
    [['vm', 'set', 'x', '--guest-watchdog', 'yes'], /--guest-watchdog must be on or off/],
    [['vm', 'set', 'x', '--window', 'soon'], /--window must be a duration/],
    [['vm', 'set', 'x', '--liveness', 'ping'], /--liveness must be agent, tcp:PORT/],
    [['vm', 'create', 'x', '--cpus'], /'--cpus <value>' argument missing; see corral help vm create$/],
    [['vm', 'frobnicate', 'x'], /^unknown command "vm frobnicate"; see corral help vm$/],
    [['help', 'nope'], /^unknown command "nope"; see corral help$/],
  ])('corral %j', (argv, message) => {
    expect(() => parse(COMMANDS, argv as string[])).toThrow(message);
  });
});

describe('main', () => {
  const written = { out: '', err: '' };
  afterEach(() => {
    vi.restoreAllMocks();
    written.out = written.err = '';
  });
  function capture() {
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((written.out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((written.err += String(s)), true));
  }

  it('prints help with exit 0, and usage errors in one line with exit 2, before any host is needed', async () => {
    capture();
    expect(await main(['vm', 'create', '--help'])).toBe(0);
    expect(written.out).toBe(commandHelp(byWords('vm create')) + '\n');
    const nowhere = ['--data', '/nonexistent/corral'];
    expect(await main([...nowhere, 'vm', 'set', 'x', '--live'])).toBe(2);
    expect(await main([...nowhere, 'vm', 'create', 'x', '--disk', '1G', '--disk-image', 'a.img'])).toBe(2);
    expect(written.err).toBe(
      'corral: nothing to set; see corral help vm set\n' +
        'corral: use either --disk SIZE (new disk) or --disk-image PATH (existing), not both\n',
    );
    expect(await main([...nowhere, 'vm', 'list'])).toBe(1);
    expect(written.err).toMatch(/no Corral host is running for \/nonexistent\/corral/);
  });
});
