// High availability: which HA VMs this host knows, their owners and epochs, a fence that holds
// HA starts back, and the load balancer (what it would move, and turning it on or off).
import type { BalanceReport, HaStatus } from '../../core/api/contract.js';
import { out, printJson } from '../format.js';
import { command, flag, UsageError } from '../table.js';

function statusText(s: HaStatus): string {
  const lines = [
    s.clustered ? 'In a cluster.' : 'Not in a cluster: HA VMs are listed, but nothing can fail over until this host joins one.',
    `Load balancing: ${s.balance ? 'on' : 'off'}`,
  ];
  if (s.fence) lines.push(`Fenced at ${new Date(s.fence.at).toISOString()}: killed ${s.fence.killed.join(', ') || 'no guest'}`);
  if (s.startBlocker) lines.push(`HA starts refused: ${s.startBlocker}`);
  if (!s.vms.length) lines.push('No HA VMs. Make one with: corral vm set NAME --ha on');
  for (const v of s.vms) {
    const owner = v.owner ? `owner ${v.owner} (epoch ${v.epoch})` : 'no owner yet';
    const extra = [v.group && `group ${v.group}`, v.hosts.length && `prefers ${v.hosts.join(',')}`].filter(Boolean).join(', ');
    lines.push(`  ${v.name}: ${v.state}, priority ${v.priority}, ${owner}${extra ? `, ${extra}` : ''}`);
  }
  for (const p of s.pending) lines.push(`  pending: ${p.vm} → ${p.to} (epoch ${p.epoch}) since ${new Date(p.since).toISOString()}`);
  return lines.join('\n');
}

function balanceText(r: BalanceReport): string {
  const lines = [`Load balancing: ${r.enabled ? 'on' : 'off'}`];
  if (r.imbalance !== null) lines.push(`Imbalance: ${r.imbalance.toFixed(3)}`);
  for (const [h, l] of Object.entries(r.loads)) lines.push(`  ${h}: load ${l.toFixed(3)}`);
  lines.push(
    r.proposal
      ? `Would move ${r.proposal.vm} from ${r.proposal.from} to ${r.proposal.to}: ${r.proposal.why}`
      : `Nothing would move: ${r.why}`,
  );
  for (const h of r.held ?? []) lines.push(`  ${h.vm} cannot move: ${h.why}`);
  const moves = r.moves ?? [];
  if (moves.length) lines.push('Moves by load balancing (newest first):');
  for (const m of moves.slice(0, 10)) {
    const when = new Date(m.endedAt ?? m.at).toISOString();
    const what = m.outcome === 'moving' ? 'moving' : m.outcome === 'moved' ? 'moved' : `failed (${m.error ?? 'unknown error'})`;
    lines.push(`  ${when} ${m.vm} ${m.from} → ${m.to}: ${what}; ${m.why}`);
  }
  return lines.join('\n');
}

export const haCommands = [
  command({
    words: 'ha status',
    args: [],
    summary: 'Show HA VMs, their owners and epochs, pending moves and any fence',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const s = await (await host()).call('ha.status', {});
      if (o.json) printJson(s);
      else out(statusText(s));
      return 0;
    },
  }),
  command({
    words: 'ha balance',
    args: [],
    summary: 'Show what load balancing would move (--dry-run), or turn it --on or --off',
    options: {
      'dry-run': flag('say what would move, where and why; move nothing'),
      on: flag('let the cluster leader move one VM at a time off busy hosts'),
      off: flag('stop automatic moves'),
      json: flag('print JSON for scripts'),
    },
    async run({ o, host }) {
      const modes = (['dry-run', 'on', 'off'] as const).filter((m) => o[m]);
      if (modes.length !== 1) throw new UsageError('give exactly one of --dry-run, --on or --off');
      const r = await (await host()).call('ha.balance', { mode: modes[0]! });
      if (o.json) printJson(r);
      else out(balanceText(r));
      return 0;
    },
  }),
];
