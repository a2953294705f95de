// Moving a VM to another host: live when it runs, offline when it is stopped.
import type { MigrationProgress } from '../../core/api/contract.js';
import { MiB } from '../../core/api/units.js';
import { out } from '../format.js';
import { command, option, UsageError } from '../table.js';
import { int, oneOf, text } from '../values.js';

/** One line of progress: what moved, what is left, the rate and the pause to expect. */
function progressLine(p: MigrationProgress): string {
  const mib = (n: number) => `${Math.round(n / MiB)}`;
  if (p.phase === 'disks') return `disks ${mib(p.diskTransferred)}/${mib(p.diskTotal)} MiB`;
  const parts = [`${p.phase}: RAM ${mib(p.ramTransferred)} MiB sent, ${mib(p.ramRemaining)} MiB left`];
  if (p.diskTotal) parts.push(`disks ${mib(p.diskTransferred)}/${mib(p.diskTotal)} MiB`);
  parts.push(`${Math.round(p.mbps)} Mbit/s`);
  if (p.expectedDowntimeMs !== null) parts.push(`expected pause ${p.expectedDowntimeMs} ms`);
  return parts.join(', ');
}

export const migrateCommands = [
  command({
    words: 'vm migrate',
    args: ['NAME', 'HOST'],
    summary: 'Move a VM to another host of the cluster, or to a URL (live if it runs); Ctrl-C cancels',
    options: {
      token: option('TOKEN', 'with a URL as HOST: an admin API token of that host', text),
      'max-downtime': option('MS', 'the longest pause of the guest at the switch-over (default 300)', int),
      storage: option(
        'auto|shared|local',
        'shared: same disk paths on both hosts; local: copy the disks (default auto)',
        oneOf('auto', 'shared', 'local'),
      ),
    },
    async run({ args: [name, to], o, host }) {
      if (to.includes('://') && !o.token)
        throw new UsageError('--token is needed with a URL: an admin API token of the target host (corral token create there)');
      const c = await host();
      const tty = process.stderr.isTTY;
      let last = 0;
      c.on('migration.progress', (p) => {
        if (p.vmName !== name) return;
        const now = Date.now();
        if (!tty && now - last < 2000 && p.phase !== 'done') return;
        last = now;
        process.stderr.write(tty ? `\r\x1b[K${progressLine(p)}` : `${progressLine(p)}\n`);
      });
      await c.call('events.subscribe', {});
      let cancelling = false;
      const onSigint = () => {
        if (cancelling) return;
        cancelling = true;
        process.stderr.write(`${tty ? '\n' : ''}Cancelling the migration of ${name}…\n`);
        c.call('vm.migrateCancel', { vm: name }).catch(() => undefined);
      };
      process.on('SIGINT', onSigint);
      try {
        const r = await c.call('vm.migrate', {
          vm: name,
          to,
          token: o.token,
          maxDowntimeMs: o['max-downtime'],
          storage: o.storage,
        });
        if (tty) process.stderr.write('\n');
        const pause = r.downtimeMs !== null ? `, paused ${r.downtimeMs} ms` : '';
        out(
          `${r.vm}: moved to ${r.to} (${r.live ? 'live' : 'offline'}, ${r.storage} storage) in ${(r.totalMs / 1000).toFixed(1)} s${pause}`,
        );
        return 0;
      } catch (err) {
        if (tty) process.stderr.write('\n');
        if (cancelling) {
          process.stderr.write(`corral: cancelled: ${name} stays on this host\n`);
          return 130;
        }
        throw err;
      } finally {
        process.off('SIGINT', onSigint);
      }
    },
  }),
];
