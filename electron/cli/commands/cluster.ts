// Forming a cluster of hosts and looking at it: init, token, join, leave, status.
import type { ClusterStatus, JoinTicket } from '../../core/api/contract.js';
import { formatSize } from '../../core/api/units.js';
import { out, printJson, table } from '../format.js';
import { command, flag, option, UsageError, type Parse } from '../table.js';
import { int, text } from '../values.js';

const port: Parse<number> = (t, f) => {
  const n = int(t, f);
  if (n < 1 || n > 65535) throw new UsageError(`${f} must be a port (1-65535), not "${t}"`);
  return n;
};

const where = {
  name: option('NAME', "this host's name in the cluster (default: the machine's hostname)", text),
  address: option('ADDR', 'the address other hosts reach this one at (default: the first non-loopback IPv4 address)', text),
  'peer-port': option('PORT', 'the host-to-host API, mutual TLS (default 7421)', port),
  'join-port': option('PORT', 'where joining hosts present their token (default 7422)', port),
  'etcd-client-port': option('PORT', "etcd's client port (default 7423; never 2379, a system etcd's)", port),
  'etcd-peer-port': option('PORT', "etcd's peer port (default 7424; never 2380)", port),
};

function placement(o: { name?: string; address?: string } & Record<string, unknown>) {
  const ports: Record<string, number> = {};
  if (o['peer-port']) ports.peer = o['peer-port'] as number;
  if (o['join-port']) ports.join = o['join-port'] as number;
  if (o['etcd-client-port']) ports.etcdClient = o['etcd-client-port'] as number;
  if (o['etcd-peer-port']) ports.etcdPeer = o['etcd-peer-port'] as number;
  return { ...(o.name ? { name: o.name } : {}), ...(o.address ? { address: o.address } : {}), ports };
}

function ticketText(t: JoinTicket): string {
  return [
    `CA fingerprint (SHA-256): ${t.fingerprint}`,
    `To add a host, run there (the token works once, until ${new Date(t.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC):`,
    `  ${t.command}`,
  ].join('\n');
}

export const clusterCommands = [
  command({
    words: 'cluster init',
    args: [],
    summary: 'Make this host a one-host cluster (a CA and an etcd member) and print a join command',
    options: { ...where, json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const t = await (await host()).call('cluster.init', placement(o));
      if (o.json) printJson(t);
      else out(`This host is now a cluster of one.\n${ticketText(t)}`);
      return 0;
    },
  }),
  command({
    words: 'cluster token',
    args: [],
    summary: 'Print another one-time join command (on the host that made the cluster)',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const t = await (await host()).call('cluster.token', {});
      if (o.json) printJson(t);
      else out(ticketText(t));
      return 0;
    },
  }),
  command({
    words: 'cluster join',
    args: ['URL'],
    summary: "Join the cluster at URL (a host's join port) with a token from cluster init or cluster token",
    options: { ...where, token: option('TOKEN', 'the one-time token from cluster init or cluster token', text) },
    async run({ o, args: [url], host }) {
      if (!o.token)
        throw new UsageError('"corral cluster join" needs --token TOKEN (printed by corral cluster init or corral cluster token)');
      const s = await (await host()).call('cluster.join', { url, token: o.token, ...placement(o) });
      const me = s.hosts.find((h) => h.self);
      out(`Joined: ${s.hosts.length} host(s); this host is an etcd ${me?.etcdRole ?? 'member'}.`);
      return 0;
    },
  }),
  command({
    words: 'cluster leave',
    args: [],
    summary: "Leave the cluster: this host's certificate is revoked and its VMs stay here",
    options: {},
    async run({ host }) {
      await (await host()).call('cluster.leave', {});
      out('Left the cluster; this host is a single host again.');
      return 0;
    },
  }),
  command({
    words: 'cluster status',
    args: [],
    summary: 'Show the hosts of the cluster, their health and room, and the etcd members',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const s = await (await host()).call('cluster.status', {});
      if (o.json) printJson(s);
      else out(statusText(s));
      return 0;
    },
  }),
];

function statusText(s: ClusterStatus): string {
  if (!s.clustered) return s.problem ?? 'This host is not in a cluster. Make one with corral cluster init.';
  const lines = [`Cluster ${s.clusterId}`];
  if (s.problem) lines.push(`Problem: ${s.problem}`);
  lines.push(
    '',
    table([
      ['HOST', 'ADDRESS', 'ETCD', 'HEALTH', 'VMS', 'MEMORY COMMITTED'],
      ...s.hosts.map((h) => [
        `${h.name}${h.self ? ' (this host)' : ''}`,
        h.address,
        h.etcdRole,
        `${h.reporting ? 'reporting' : 'not reporting'}${h.maintenance ? ', maintenance' : ''}`,
        h.vms === null ? '-' : `${h.running}/${h.vms} running`,
        h.memoryBytes === null ? '-' : `${formatSize(h.committedBytes ?? 0)} of ${formatSize(h.memoryBytes)}`,
      ]),
    ]),
    '',
    table([
      ['ETCD MEMBER', 'CLIENT URLS', 'STATE'],
      ...s.members.map((m) => [
        s.hosts.find((h) => h.id === m.name)?.name ?? (m.name || m.id),
        m.clientUrls.join(',') || '-',
        m.leader ? 'leader' : m.started ? 'follower' : 'not started',
      ]),
    ]),
  );
  return lines.join('\n');
}
