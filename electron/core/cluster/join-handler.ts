// The signing host's side of a join: check the CSR, take the token (one etcd transaction: it is
// deleted as it is accepted, so it works once), sign, and make the newcomer an etcd member while
// the cluster has fewer than three, a client after that. Checks that can fail come before the
// token is taken, so a refused join leaves everything as it was.
import { whileUnhealthy, type Cluster } from './cluster.js';
import { csrHostId, signCsr } from './ca.js';
import { clientUrl } from './etcd-member.js';
import type { HostRecord } from './hosts.js';
import { JoinRefused, type JoinAnswer, type JoinRequest } from './join.js';
import { keys } from './keys.js';
import { hashSecret } from './tokens.js';

/** Voting members beyond this many would slow every write; later hosts are etcd clients. */
export const MAX_MEMBERS = 3;

export async function handleJoin(c: Cluster, req: JoinRequest): Promise<JoinAnswer> {
  const hostId = csrHostId(req.csr);
  if (!/^h[0-9a-f]{16}$/.test(hostId)) throw new JoinRefused('the CSR does not name a host id');
  if (c.directory.hosts.has(hostId) || c.directory.revoked.has(hostId)) throw new JoinRefused(`host id ${hostId} is already known`);
  const taken = [...c.directory.hosts.values()].find((h) => h.name === req.name);
  if (taken) throw new JoinRefused(`a host named "${req.name}" is already in the cluster (give another with --name)`);
  const tokenKey = keys.joinToken(hashSecret(req.secret));
  const took = await c.etcd.if(tokenKey, 'Version', '>', 0).then(c.etcd.delete().key(tokenKey)).commit();
  if (!took.succeeded)
    throw new JoinRefused('the token is not valid: it is wrong, already used or expired (make one with corral cluster token)');

  const cert = signCsr(c.certs, req.csr, req.address);
  if (c.config.etcdRole === 'external') return await joinExternal(c, req, hostId, cert);
  const list = await c.etcd.cluster.memberList({});
  const voters = list.members.filter((m) => !m.isLearner);
  const endpoints = voters.flatMap((m) => m.clientURLs);
  const etcdRole = voters.length < MAX_MEMBERS ? 'member' : 'client';
  // written first: once a member is added, writes wait for it
  const record: HostRecord = { id: hostId, name: req.name, address: req.address, ports: req.ports, etcdRole, joinedAt: Date.now() };
  await c.etcd.put(keys.host(hostId)).value(JSON.stringify(record));
  let answer: JoinAnswer = { clusterId: c.config.clusterId, cert, etcdRole, endpoints };
  if (etcdRole === 'member') {
    // as a learner, which does not count towards quorum: a host that never starts its etcd
    // (or dies while catching up) cannot take the cluster's writes down with it
    const peerUrl = clientUrl(req.address, req.ports.etcdPeer);
    const added = await whileUnhealthy(() => c.etcd.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true }));
    const initialCluster = added.members.map((m) => `${m.name || hostId}=${m.peerURLs[0]}`).join(',');
    answer = { ...answer, initialCluster, memberId: added.member.ID };
  }
  c.deps.log(`cluster: host "${req.name}" (${req.address}) joined as an etcd ${etcdRole}`);
  return answer;
}

/** A cluster on the user's etcd: the newcomer becomes one more client of it (its own --etcd). */
async function joinExternal(c: Cluster, req: JoinRequest, hostId: string, cert: string): Promise<JoinAnswer> {
  const record: HostRecord = {
    id: hostId,
    name: req.name,
    address: req.address,
    ports: req.ports,
    etcdRole: 'external',
    joinedAt: Date.now(),
  };
  await c.etcd.put(keys.host(hostId)).value(JSON.stringify(record));
  c.deps.log(`cluster: host "${req.name}" (${req.address}) joined as a client of the cluster's own etcd`);
  return { clusterId: c.config.clusterId, cert, etcdRole: 'external', endpoints: c.config.endpoints };
}
