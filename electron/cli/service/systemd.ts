// Installing the unit: where it goes, and the systemctl calls that enable, start and remove it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SYSTEM_ACCOUNT, UNIT_NAME, type UnitScope } from './unit.js';

/** sd_booted(): systemd is the init system of this machine. */
export function systemdRuns(): boolean {
  return fs.existsSync('/run/systemd/system');
}

export function unitPath(scope: UnitScope, env: NodeJS.ProcessEnv = process.env): string {
  if (scope === 'system') return path.join('/etc/systemd/system', UNIT_NAME);
  const config = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(config, 'systemd', 'user', UNIT_NAME);
}

/** Runs a command with its output shown; throws naming it when it fails. */
export function run(cmd: string, args: string[], opts: { quiet?: boolean } = {}): number {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? 'ignore' : 'inherit' });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r.status ?? 1;
}

function must(cmd: string, args: string[]): void {
  const code = run(cmd, args);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit status ${code})`);
}

export function systemctl(scope: UnitScope, ...args: string[]): string[] {
  return scope === 'user' ? ['--user', ...args] : args;
}

/** The account a system unit runs as, created (a system user in the kvm group) if missing. */
export function ensureAccount(): void {
  if (run('id', ['-u', SYSTEM_ACCOUNT], { quiet: true }) === 0) return;
  must('useradd', [
    '--system',
    '--user-group',
    '--groups',
    'kvm',
    '--home-dir',
    '/var/lib/corral',
    '--shell',
    '/usr/sbin/nologin',
    SYSTEM_ACCOUNT,
  ]);
}

export function install(scope: UnitScope, unit: string): string {
  const file = unitPath(scope);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, unit, { mode: 0o644 });
  must('systemctl', systemctl(scope, 'daemon-reload'));
  must('systemctl', systemctl(scope, 'enable', '--now', UNIT_NAME));
  // a user's services run only while they are logged in, unless they linger
  if (scope === 'user') must('loginctl', ['enable-linger', os.userInfo().username]);
  return file;
}

/** Stops the service (the guests keep running) and removes the unit. */
export function uninstall(scope: UnitScope): string | null {
  const file = unitPath(scope);
  if (!fs.existsSync(file)) return null;
  run('systemctl', systemctl(scope, 'disable', '--now', UNIT_NAME));
  fs.rmSync(file);
  must('systemctl', systemctl(scope, 'daemon-reload'));
  return file;
}
