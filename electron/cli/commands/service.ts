// `corral service`: run `corral serve` as a systemd service that starts with the machine.
import os from 'node:os';
import path from 'node:path';
import { defaultDataDir } from '../../core/paths.js';
import { out, shellQuote } from '../format.js';
import { commandLine, renderUnit, SYSTEM_DATA_DIR, UNIT_NAME, type UnitScope } from '../service/unit.js';
import { ensureAccount, install, run, systemctl, systemdRuns, uninstall, unitPath } from '../service/systemd.js';
import { command, flag, option, UsageError } from '../table.js';
import { text } from '../values.js';

const scopeOptions = {
  user: flag('a user unit that runs while the machine is up (lingering); the default unless root'),
  system: flag('a system unit, running as the "corral" account (root only)'),
};

function scopeOf(o: { user?: true; system?: true }): UnitScope {
  if (o.user && o.system) throw new UsageError('use either --user or --system, not both');
  if (o.system) return 'system';
  if (o.user) return 'user';
  return process.getuid?.() === 0 ? 'system' : 'user';
}

function needRoot(scope: UnitScope): void {
  if (scope === 'system' && process.getuid?.() !== 0) throw new Error('--system needs root (run it with sudo)');
}

/** Where this Corral is installed: the checkout or the npm package that holds bin/corral. */
const CORRAL_ROOT = path.resolve(__dirname, '..', '..', '..', '..');

export const serviceCommands = [
  command({
    words: 'service install',
    args: [],
    summary: 'Install and start a systemd unit that runs `corral serve` from boot',
    options: {
      ...scopeOptions,
      listen: option('HOST:PORT', 'where the web UI listens (default 127.0.0.1:7420)', text),
      'dry-run': flag('print the unit and change nothing'),
    },
    async run({ o, dataDir }) {
      const scope = scopeOf(o);
      // root's own data dir is never meant for a system service
      const data = scope === 'system' && !process.env.CORRAL_DATA && dataDir === defaultDataDir() ? SYSTEM_DATA_DIR : dataDir;
      const spec = {
        scope,
        node: process.execPath,
        corral: path.join(CORRAL_ROOT, 'bin', 'corral'),
        dataDir: data,
        listen: o.listen ?? '127.0.0.1:7420',
      };
      const unit = renderUnit(spec);
      if (o['dry-run']) {
        out(`# ${unitPath(scope)}\n${unit}`);
        return 0;
      }
      if (!systemdRuns()) {
        out('systemd is not running on this machine: run Corral from your init system or a terminal instead:');
        out(commandLine(spec).map(shellQuote).join(' '));
        return 1;
      }
      needRoot(scope);
      if (scope === 'system') ensureAccount();
      const file = install(scope, unit);
      out(`Installed ${file}; ${UNIT_NAME} is enabled and started.`);
      out(`Its web UI address (with the token): journalctl ${scope === 'user' ? '--user ' : ''}-u corral -n 20`);
      if (scope === 'system') out(`Data: ${data} (owned by the corral account; use sudo -u corral corral --data ${data} ...)`);
      return 0;
    },
  }),
  command({
    words: 'service uninstall',
    args: [],
    summary: 'Stop and remove the systemd unit; running guests keep running',
    options: scopeOptions,
    async run({ o }) {
      const scope = scopeOf(o);
      if (!systemdRuns()) throw new Error('systemd is not running on this machine: there is no service to remove');
      needRoot(scope);
      const file = uninstall(scope);
      out(file ? `Removed ${file}; the guests keep running.` : `No ${scope} unit is installed (${unitPath(scope)}).`);
      return 0;
    },
  }),
  command({
    words: 'service status',
    args: [],
    summary: "Show the systemd unit's state",
    options: scopeOptions,
    async run({ o }) {
      const scope = scopeOf(o);
      if (!systemdRuns()) {
        out('systemd is not running on this machine: no service is installed');
        return 3;
      }
      out(`Unit file: ${unitPath(scope)}${os.EOL}`);
      return run('systemctl', systemctl(scope, 'status', '--no-pager', UNIT_NAME));
    },
  }),
];
