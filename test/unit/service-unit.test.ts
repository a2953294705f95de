// The systemd unit of `corral service install`: what it must say for guests to survive a
// service restart and to be stopped in order at a shutdown, checked by systemd's own verifier
// (Debian's systemd package has systemd-analyze even where systemd is not PID 1).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderUnit, type UnitScope } from '../../electron/cli/service/unit';
import { CLI, tempDir } from '../helpers';

const dir = tempDir('corral-unit-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function verify(scope: UnitScope, unit: string): { code: number | null; stderr: string } {
  const file = path.join(dir, `${scope}-${Math.random().toString(36).slice(2)}`, 'corral.service');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, unit);
  const runtime = fs.mkdtempSync(path.join(dir, 'run-'));
  const r = spawnSync('systemd-analyze', [...(scope === 'user' ? ['--user'] : []), 'verify', file], {
    encoding: 'utf8',
    // a user manager needs a runtime dir, which a test process may not have
    env: { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_LEVEL: 'notice' },
  });
  if (r.error) throw new Error(`systemd-analyze: ${r.error.message}; install systemd (bash scripts/setup.sh --dev)`);
  return { code: r.status, stderr: r.stderr };
}

const base = { node: process.execPath, corral: CLI, listen: '127.0.0.1:7420' };

describe('the systemd unit', () => {
  for (const scope of ['system', 'user'] as const) {
    it(`a ${scope} unit passes systemd-analyze verify without a warning`, () => {
      const unit = renderUnit({ ...base, scope, dataDir: scope === 'system' ? '/var/lib/corral' : path.join(dir, 'my data 100%') });
      expect(verify(scope, unit)).toEqual({ code: 0, stderr: '' });
    });
  }

  it('leaves guests alone on restart and gives the ordered shutdown time', () => {
    const unit = renderUnit({ ...base, scope: 'system', dataDir: '/var/lib/corral' });
    expect(unit).toContain('\nKillMode=process\n');
    expect(unit).toContain('\nTimeoutStopSec=10min\n');
    expect(unit).toContain('\nDelegate=yes\n');
    expect(unit).toContain('\nUser=corral\n');
    expect(unit).toContain('\nStateDirectory=corral\n');
    expect(unit).not.toContain('MemoryDenyWriteExecute'); // QEMU's TCG and Node's V8 both JIT
    expect(unit).toContain('\nWantedBy=multi-user.target\n');
  });

  it('quotes a data dir with spaces and escapes % for systemd', () => {
    const unit = renderUnit({ ...base, scope: 'user', dataDir: '/home/a b/100%' });
    expect(unit).toContain(`ExecStart=${process.execPath} ${CLI} --data "/home/a b/100%%" serve --listen 127.0.0.1:7420\n`);
    expect(unit).toContain('\nWantedBy=default.target\n');
    expect(unit).not.toContain('User=');
  });

  it('corral service install --dry-run prints the unit and changes nothing', () => {
    const home = tempDir('corral-home-');
    const r = spawnSync(process.execPath, [CLI, '--data', path.join(home, 'data'), 'service', 'install', '--user', '--dry-run'], {
      encoding: 'utf8',
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`# ${path.join(home, '.config', 'systemd', 'user', 'corral.service')}\n[Unit]\n`);
    expect(r.stdout).toContain(`--data ${path.join(home, 'data')} serve --listen 127.0.0.1:7420`);
    expect(fs.readdirSync(home)).toEqual([]);
  });
});
