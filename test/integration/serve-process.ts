// `corral serve` and the `corral` CLI as real processes, the way users and scripts run them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { CLI, FIXTURE_DIR, waitFor } from '../helpers';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function corral(dataDir: string, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, '--data', dataDir, ...args],
      { env: { ...process.env, CORRAL_ACCEL: 'tcg' }, timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

export class ServeProcess {
  url = '';
  token = '';
  port = 0;
  stderr = '';
  exit: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** Everything serve printed on stdout. */
  out = '';

  static async start(dataDir: string, listen = '127.0.0.1:0', env: NodeJS.ProcessEnv = {}, extra: string[] = []): Promise<ServeProcess> {
    const child = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, '--listen', listen, ...extra], {
      env: { ...process.env, CORRAL_ACCEL: 'tcg', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ServeProcess(child);
    child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
    await Promise.race([
      waitFor('corral serve to print its URL', () => /\n(No users|Users log in)/.test(p.out), 30_000),
      p.exit.then(() => {
        throw new Error(`corral serve exited: ${p.stderr.trim()}`);
      }),
    ]);
    p.url = /Open: (http\S+)/.exec(p.out)![1]!;
    p.token = new URL(p.url).hash.replace('#token=', '');
    p.port = Number(new URL(p.url).port);
    // the guest's kernel and initrd are used where they are: their folder is a pool
    const pool = await corral(dataDir, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
    if (pool.code !== 0 && !/already exists/.test(pool.stderr)) throw new Error(`corral pool add: ${pool.stderr}`);
    return p;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exit;
  }
}

/** Runs `corral vm console NAME [...extra]`, types a line, waits for `expectOut`, then leaves with Ctrl-]. */
export function consoleSession(
  data: string,
  name: string,
  line: string,
  expectOut: RegExp,
  extra: string[] = [],
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--data', data, 'vm', 'console', name, ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`console: no ${expectOut} in ${JSON.stringify(out.slice(-500))}`));
    }, 60_000);
    child.stderr.on('data', (d: Buffer) => {
      if (!sent && d.toString().includes('Ctrl-]')) {
        sent = true;
        child.stdin.write(`\n${line}\n`);
      }
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (expectOut.test(out)) child.stdin.write('\x1d');
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
