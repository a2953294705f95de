// Installing without a checkout: `npm pack` → `npm install -g` into a temporary prefix gives a
// working `corral` (production dependencies only, native modules built at install, the built
// UI), which runs `corral serve` and drives a real guest; and the .deb built from the same
// package holds the CLI, the UI, Node.js and the systemd unit, with its dependencies.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';

const ROOT = path.join(__dirname, '..', '..');
const NODE_BIN = path.dirname(process.execPath);
const NODE_DIR = path.dirname(NODE_BIN);
/** The Node that runs the tests first on PATH (Node 24), with its headers for node-gyp. */
const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${NODE_BIN}:${process.env.PATH}`,
  CORRAL_ACCEL: 'tcg',
  ...(fs.existsSync(path.join(NODE_DIR, 'include', 'node')) ? { npm_config_nodedir: NODE_DIR } : {}),
};
const INSTALL_MS = 600_000;

const work = tempDir('corral-pack-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: ENV, cwd: opts.cwd ?? ROOT, timeout: opts.timeout ?? INSTALL_MS, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm pack, npm install -g', () => {
  it('installs a corral that serves the UI and runs a real guest', { timeout: INSTALL_MS + 300_000 }, async () => {
    expect(fs.existsSync(path.join(ROOT, 'out', 'renderer', 'index.html')), 'run npm run build first').toBe(true);
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work]);
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = path.join(work, packed.stdout.trim().split('\n').at(-1)!);
    const prefix = path.join(work, 'prefix');
    const inst = await sh('npm', ['install', '-g', '--prefix', prefix, '--no-fund', '--no-audit', '--allow-scripts=node-pty', tarball]);
    expect(inst.code, inst.stderr).toBe(0);

    const pkg = path.join(prefix, 'lib', 'node_modules', 'corral');
    // production dependencies only, the built UI, no sources
    expect(fs.readdirSync(path.join(pkg, 'node_modules')).sort()).toEqual(
      expect.arrayContaining(['better-sqlite3', 'node-pty', 'ws', 'zod']),
    );
    for (const dev of ['electron', 'vite', 'svelte', 'vitest', 'typescript'])
      expect(fs.existsSync(path.join(pkg, 'node_modules', dev))).toBe(false);
    expect(fs.existsSync(path.join(pkg, 'out', 'renderer', 'index.html'))).toBe(true);
    expect(fs.existsSync(path.join(pkg, 'electron'))).toBe(false);
    const bin = path.join(prefix, 'bin', 'corral');

    const data = path.join(work, 'data');
    const corral = (...args: string[]) => sh(bin, ['--data', data, ...args], { cwd: work, timeout: 120_000 });
    expect((await corral('--version')).stdout).toMatch(/^corral \d+\.\d+\.\d+/);

    const serve = spawn(bin, ['--data', data, 'serve', '--listen', '127.0.0.1:0'], {
      env: ENV,
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
    serve.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => serve.once('exit', resolve));
    try {
      const url = new URL(
        (await waitFor(`the installed corral serve to print its URL (${err})`, () => /Open: (http\S+)/.exec(out), 60_000))[1]!,
      );
      const page = await fetch(`http://${url.host}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script[^>]+src="[^"]*assets\//);

      // the guest's kernel and initrd are used where they are: their folder becomes a pool
      expect((await corral('pool', 'add', 'fixtures', FIXTURE_DIR)).code).toBe(0);
      expect(
        (await corral('vm', 'create', 'packed', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0')).code,
      ).toBe(0);
      const started = await corral('vm', 'start', 'packed');
      expect(started.code, started.stderr).toBe(0);
      expect(JSON.parse((await corral('vm', 'show', 'packed', '--json')).stdout)).toMatchObject({ state: 'running' });
      const stopped = await corral('vm', 'stop', 'packed', '--timeout', '30');
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(JSON.parse((await corral('vm', 'show', 'packed', '--json')).stdout)).toMatchObject({ state: 'stopped', pid: null });
    } finally {
      serve.kill('SIGTERM');
      await exited;
    }
  });
});

describe('the .deb', () => {
  // dpkg-deb comes with dpkg, on every machine the setup supports: a missing one fails here, loudly
  it('holds the CLI, the UI, Node.js and the unit, and depends on QEMU', { timeout: INSTALL_MS + 120_000 }, async () => {
    // the tests run on a build already made (npm run build)
    const built = await sh('env', ['CORRAL_DEB_NO_BUILD=1', 'bash', 'build/deb/build.sh', path.join(work, 'deb')], { timeout: INSTALL_MS });
    expect(built.code, built.stderr).toBe(0);
    const deb = built.stdout.trim().split('\n').at(-1)!;
    expect(path.basename(deb)).toMatch(/^corral-server_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);

    const depends = (await sh('dpkg-deb', ['--field', deb, 'Depends'])).stdout.trim().split(/,\s*/);
    expect(depends).toEqual(expect.arrayContaining(['qemu-system-x86', 'qemu-utils']));
    const files = (await sh('dpkg-deb', ['--contents', deb])).stdout.split('\n').map((l) => l.split(/\s+/).at(-1));
    for (const f of [
      './usr/bin/corral',
      './usr/lib/corral/node',
      './usr/lib/corral/bin/corral',
      './usr/lib/corral/out/electron/cli/main.js',
      './usr/lib/corral/out/renderer/index.html',
      './lib/systemd/system/corral.service',
    ])
      expect(files).toContain(f);
    expect(files.some((f) => f?.includes('/node_modules/electron/'))).toBe(false);

    // what it installs runs: the bundled Node runs the CLI, and the unit is the one service install writes
    const root = path.join(work, 'extracted');
    expect((await sh('dpkg-deb', ['-x', deb, root])).code).toBe(0);
    const version = await sh(path.join(root, 'usr/lib/corral/node'), [path.join(root, 'usr/lib/corral/bin/corral'), '--version']);
    expect(version.stdout).toMatch(/^corral \d+\.\d+\.\d+/);
    const unit = fs.readFileSync(path.join(root, 'lib/systemd/system/corral.service'), 'utf8');
    expect(unit).toContain(
      'ExecStart=/usr/lib/corral/node /usr/lib/corral/bin/corral --data /var/lib/corral serve --listen 127.0.0.1:7420\n',
    );
    expect(unit).toContain('\nKillMode=process\n');
    expect(unit).toContain('\nUser=corral\n');
  });
});
