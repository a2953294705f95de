// Becoming part of a cluster: init (this host makes the CA and the first etcd member), join
// (another host's token), and resume (a host restarted with its cluster config).
import fs from 'node:fs';
import os from 'node:os';
import type { ClusterInitArgs, ClusterJoinArgs } from '../api/cluster-schemas.js';
import type { z } from 'zod';
import { certPaths, fingerprintOf, issueOwnCert, makeCa, makeKeyAndCsr } from './ca.js';
import { Cluster, etcdClient, memberFor, newHostId, promote, type ClusterDeps } from './cluster.js';
import { DEFAULT_PORTS, clusterDir, readClusterConfig, type ClusterConfig } from './config.js';
import { clientUrl, type EtcdMember } from './etcd-member.js';
import { fetchCa, postJoin } from './join.js';
import { keys } from './keys.js';
import { parseToken } from './tokens.js';

type InitArgs = z.output<typeof ClusterInitArgs>;
type JoinArgs = z.output<typeof ClusterJoinArgs>;

/** The first non-loopback IPv4 address: where other hosts most likely reach this one. */
export function defaultAddress(): string {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('no network address found: give one with --address');
}

const shortName = () =>
  os
    .hostname()
    .split('.')[0]!
    .replace(/[^a-zA-Z0-9._-]/g, '-') || 'host';

/** A host of a cluster runs (or may be asked to run) an etcd member: Debian's etcd-server. */
function needEtcd(deps: ClusterDeps): void {
  const bin = deps.etcdBinary ?? '/usr/bin/etcd';
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: install etcd (apt install etcd-server) on every host of the cluster`);
}

function ensureFree(dataDir: string): void {
  if (readClusterConfig(dataDir)) throw new Error('this host is already in a cluster (corral cluster leave first)');
  // what a failed attempt left (no config: it never got to be a member)
  fs.rmSync(clusterDir(dataDir), { recursive: true, force: true });
}

export async function initCluster(deps: ClusterDeps, a: InitArgs): Promise<Cluster> {
  ensureFree(deps.dataDir);
  const ext = deps.externalEtcd;
  if (!ext) needEtcd(deps);
  const certs = certPaths(clusterDir(deps.dataDir));
  const hostId = newHostId();
  const address = a.address ?? defaultAddress();
  const name = a.name ?? shortName();
  try {
    makeCa(certs, name);
    issueOwnCert(certs, hostId, address);
    const ports = { ...DEFAULT_PORTS, ...a.ports };
    const config: ClusterConfig = {
      clusterId: fingerprintOf(fs.readFileSync(certs.ca, 'utf8')),
      hostId,
      name,
      address,
      ports,
      ...(ext
        ? { etcdRole: 'external' as const, endpoints: ext.endpoints, externalEtcd: ext }
        : {
            etcdRole: 'member' as const,
            endpoints: [clientUrl(address, ports.etcdClient)],
            initialCluster: `${hostId}=${clientUrl(address, ports.etcdPeer)}`,
            initialState: 'new' as const,
          }),
    };
    const c = await Cluster.start(deps, config, async (cl) => {
      // an etcd of the user's may hold another cluster already: one etcd, one cluster
      const other = await cl.etcd.if(keys.clusterId, 'Version', '==', 0).then(cl.etcd.put(keys.clusterId).value(config.clusterId)).commit();
      if (!other.succeeded)
        throw new Error('this etcd already holds a Corral cluster: join it (corral cluster join) instead of making another');
      await cl.etcd.put(keys.host(hostId)).value(JSON.stringify(cl.hostRecord()));
    });
    c.persist();
    return c;
  } catch (err) {
    fs.rmSync(clusterDir(deps.dataDir), { recursive: true, force: true });
    throw err;
  }
}

export async function joinCluster(deps: ClusterDeps, a: JoinArgs): Promise<Cluster> {
  const token = parseToken(a.token);
  const base = new URL(a.url);
  if (base.protocol !== 'https:') throw new Error('the join URL must be https://HOST:PORT (the join port cluster init printed)');
  ensureFree(deps.dataDir);
  if (!deps.externalEtcd) needEtcd(deps);
  // nothing is sent before the CA the join port shows is the one the token names
  const ca = await fetchCa(base);
  const seen = fingerprintOf(ca);
  if (seen !== token.fingerprint)
    throw new Error(`${base.origin} belongs to another cluster: its CA fingerprint is ${seen}, the token names ${token.fingerprint}`);
  const certs = certPaths(clusterDir(deps.dataDir));
  const hostId = newHostId();
  const address = a.address ?? defaultAddress();
  const name = a.name ?? shortName();
  const ports = { ...DEFAULT_PORTS, ...a.ports };
  try {
    fs.mkdirSync(certs.dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(certs.ca, ca);
    const csr = makeKeyAndCsr(certs, hostId);
    const answer = await postJoin(base, ca, { secret: token.secret, csr, name, address, ports });
    fs.writeFileSync(certs.cert, answer.cert);
    const config: ClusterConfig = {
      clusterId: answer.clusterId,
      hostId,
      name,
      address,
      ports,
      etcdRole: answer.etcdRole,
      endpoints: answer.endpoints,
      initialCluster: answer.initialCluster,
      initialState: 'existing',
    };
    if (answer.etcdRole === 'external') {
      // this host's own --etcd (its credentials); else the cluster's endpoints as they are (plain http)
      const ext = deps.externalEtcd ?? { endpoints: answer.endpoints };
      Object.assign(config, { endpoints: ext.endpoints, externalEtcd: ext, initialCluster: undefined, initialState: undefined });
    } else if (deps.externalEtcd) {
      throw new Error('this cluster runs its own etcd members: start corral serve without --etcd to join it');
    }
    let member: EtcdMember | undefined;
    if (answer.memberId) {
      // the learner catches up and is promoted before this host's client counts on it
      member = memberFor(deps, config);
      member.start();
      const bootstrap = etcdClient(certs, answer.endpoints);
      try {
        await promote(bootstrap, answer.memberId);
      } catch (err) {
        await member.stop();
        throw err;
      } finally {
        bootstrap.close();
      }
      config.endpoints = [clientUrl(address, ports.etcdClient), ...answer.endpoints];
    }
    const c = await Cluster.start(deps, config, undefined, member);
    c.persist();
    return c;
  } catch (err) {
    fs.rmSync(clusterDir(deps.dataDir), { recursive: true, force: true });
    throw err;
  }
}

/** A restarted host takes up its cluster again; null when it has none. */
export async function resumeCluster(deps: ClusterDeps): Promise<Cluster | null> {
  const config = readClusterConfig(deps.dataDir);
  if (!config) return null;
  // the endpoints and credentials of this start's --etcd win over the ones kept
  if (deps.externalEtcd && config.etcdRole === 'external')
    Object.assign(config, { endpoints: deps.externalEtcd.endpoints, externalEtcd: deps.externalEtcd });
  else if (deps.externalEtcd) deps.log('cluster: --etcd is ignored: this host runs an etcd member of its cluster');
  const c = await Cluster.start(deps, config);
  c.persist(); // with the endpoints it learnt
  return c;
}
