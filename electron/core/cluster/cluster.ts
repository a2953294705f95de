// A host's life in a cluster: its etcd member (or client), lease, directory of hosts, inventory,
// peer API and, on the host holding the CA key, the join port. Built by init, join or (after a
// restart of the host) resume; a host without a cluster never loads this module.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type https from 'node:https';
import { Etcd3 } from 'etcd3';
import { AlivePublisher } from './alive-publisher.js';
import { HostLease } from './host-lease.js';
import type { ClusterStatus, JoinTicket } from '../api/cluster-schemas.js';
import type { ResponseMessage } from '../api/contract.js';
import { EvacuationProgress } from '../api/evacuation-schemas.js';
import { MigrationProgress } from '../api/migration-schemas.js';
import type { Vms } from '../vms/index.js';
import { certPaths, type CertPaths } from './ca.js';
import { clientEndpoints, clusterDir, writeClusterConfig, type ClusterConfig } from './config.js';
import { HostDirectory } from './directory.js';
import { HaHost } from './ha-host.js';
import { EtcdMember, clientUrl } from './etcd-member.js';
import { etcdCallOptions, etcdFaultHandling } from './etcd-tuning.js';
import { externalClient, type ExternalEtcd } from './external-etcd.js';
import type { HostAlive, HostRecord } from './hosts.js';
import { Inventory } from './inventory.js';
import { listenJoin } from './join.js';
import { MaintenanceBook } from './maintenance.js';
import { ProgressFeed } from './progress-feed.js';
import { handleJoin } from './join-handler.js';
import { keys } from './keys.js';
import { PeerClient } from './peer-client.js';
import { listenPeerApi } from './peer-server.js';
import type { PeerStreamOpen } from './peer-stream.js';
import { makeToken } from './tokens.js';

export interface ClusterDeps {
  dataDir: string;
  vms: Vms;
  /** Runs a call of the contract as another host of the cluster (an admin, audited under its name). */
  dispatch: (hostName: string, address: string | null, method: string, args: unknown) => Promise<ResponseMessage>;
  /** This host's room for VMs, published with its lease. */
  capacity: () => Omit<HostAlive, 'at'>;
  log: (line: string) => void;
  /** `corral serve --etcd`: the user's etcd, which this host uses as a client instead of running a member. */
  externalEtcd?: ExternalEtcd;
  /** Consoles of this host's VMs opened by another host (peer-stream.ts). */
  openStream?: PeerStreamOpen;
  /** Where /usr/bin/etcd is (tests may point elsewhere). */
  etcdBinary?: string;
}

const ETCD_READY_MS = 90_000;

export class Cluster {
  readonly certs: CertPaths;
  readonly etcd: Etcd3;
  readonly directory: HostDirectory;
  readonly inventory: Inventory;
  readonly peers: PeerClient;
  readonly maintenance: MaintenanceBook;
  /** Evacuation progress of every host, for this host's subscribers. */
  readonly evacuations: ProgressFeed<EvacuationProgress>;
  /** Progress of the migrations every host sends away, for this host's subscribers. */
  readonly migrations: ProgressFeed<MigrationProgress>;
  /** High availability: the host's HA lease and fencer, the leader loop, failover targets. */
  readonly ha: HaHost;
  private member: EtcdMember | null = null;
  private lease!: HostLease;
  private servers: https.Server[] = [];
  private alive: AlivePublisher | null = null;
  private closed = false;

  private constructor(
    readonly deps: ClusterDeps,
    readonly config: ClusterConfig,
  ) {
    this.certs = certPaths(clusterDir(deps.dataDir));
    this.etcd = config.externalEtcd ? externalClient(config.externalEtcd) : etcdClient(this.certs, clientEndpoints(config));
    this.directory = new HostDirectory(this.etcd, deps.log);
    this.inventory = new Inventory(
      this.etcd,
      { id: config.hostId, name: config.name },
      deps.vms,
      () => this.lease.current(),
      (id) => this.directory.nameOf(id),
      (s) => deps.log(s),
    );
    this.maintenance = new MaintenanceBook(this.etcd, deps.log);
    this.evacuations = new ProgressFeed(this.etcd, config.hostId, deps.log, {
      what: 'evacuation progress',
      prefix: keys.evacuationProgress,
      keyOf: keys.evacuationProgressOf,
      schema: EvacuationProgress,
    });
    this.migrations = new ProgressFeed(this.etcd, config.hostId, deps.log, {
      what: 'migration progress',
      prefix: keys.migrationProgress,
      keyOf: keys.migrationProgressOf,
      schema: MigrationProgress,
    });
    this.peers = new PeerClient(this.certs, (id) => this.directory.hosts.get(id) ?? null);
    const { etcd, directory, inventory } = this;
    this.ha = new HaHost({
      etcd,
      hostId: config.hostId,
      dataDir: deps.dataDir,
      vms: deps.vms,
      directory,
      inventory,
      migrate: (from, vm, to) => this.migrate(from, vm, to),
      log: deps.log,
    });
  }

  /** Starts everything for a config whose certificates are in place (init, join, a restart). */
  static async start(
    deps: ClusterDeps,
    config: ClusterConfig,
    first?: (c: Cluster) => Promise<void>,
    /** A member already running (a join starts it before the cluster's client exists). */
    member?: EtcdMember,
  ): Promise<Cluster> {
    const c = new Cluster(deps, config);
    c.member = member ?? null;
    try {
      await c.up(first);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async up(first?: (c: Cluster) => Promise<void>): Promise<void> {
    const { config: cfg, deps } = this;
    if (cfg.etcdRole === 'member' && !this.member) {
      this.member = memberFor(deps, cfg);
      this.member.start();
    }
    await this.ready();
    await this.learnEndpoints();
    if (first) await first(this);
    const alive = new AlivePublisher(
      () => ({ ...this.deps.capacity(), cannotRun: this.ha.balancing.cannotRun() }),
      async (a) => void (await this.lease.current().put(keys.aliveOf(this.config.hostId)).value(JSON.stringify(a))),
    );
    this.alive = alive;
    this.lease = new HostLease(this.etcd, () => alive.publish().then(() => this.inventory.publishAll()), deps.log);
    await alive.publish();
    await this.directory.start();
    await this.maintenance.start();
    await this.evacuations.start();
    await this.migrations.start();
    // HA VMs that failed over while this host was away are dropped before it publishes them
    await this.ha.reconcile();
    await this.inventory.start();
    await this.ha.start();
    alive.start();
    // a start or a stop changes this host's room: placement elsewhere sees it now, not at the next tick
    deps.vms.journal.on('changed', alive.soon);
    const bind = cfg.address.includes(':') ? '::' : '0.0.0.0';
    this.servers.push(
      await listenPeerApi(
        {
          certs: this.certs,
          admitted: (id) => this.directory.admitted(id),
          dispatch: deps.dispatch,
          log: deps.log,
          openStream: deps.openStream,
        },
        bind,
        cfg.ports.peer,
      ),
    );
    if (fs.existsSync(this.certs.caKey))
      this.servers.push(await listenJoin(this.certs, (req) => handleJoin(this, req), bind, cfg.ports.join, deps.log));
  }

  /** Waits until etcd answers (a member that just started elects a leader first). */
  private async ready(): Promise<void> {
    const deadline = Date.now() + ETCD_READY_MS;
    for (;;) {
      try {
        await this.etcd.get(keys.clusterId).string();
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          const tail = this.member?.tail(3).join('\n') ?? '';
          throw new Error(`etcd did not answer within ${ETCD_READY_MS / 1000} s: ${(err as Error).message}${tail ? `\n${tail}` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  /**
   * A host without a member of its own keeps every voting member's client URL in its config, so
   * that at its next start it reaches the cluster through any of them, not just those known at
   * join time. A member host talks to its own member alone (clientEndpoints): nothing to learn.
   */
  private async learnEndpoints(): Promise<void> {
    if (this.config.etcdRole !== 'client') return;
    const { members } = await this.etcd.cluster.memberList({});
    const urls = members.filter((m) => !m.isLearner).flatMap((m) => m.clientURLs);
    if (urls.length) this.config.endpoints = urls;
  }

  /** A live migration by the VM's own host: this one through its dispatcher, another over the peer API. */
  private async migrate(from: string, vm: string, to: string): Promise<unknown> {
    if (from !== this.config.hostId) return await this.peers.call(from, 'vm.migrate', { vm, to });
    const r = await this.deps.dispatch(this.config.name, null, 'vm.migrate', { vm, to });
    if ('error' in r) throw new Error(r.error.message);
    return r.result;
  }

  hostRecord(): HostRecord {
    const c = this.config;
    return { id: c.hostId, name: c.name, address: c.address, ports: c.ports, etcdRole: c.etcdRole, joinedAt: Date.now() };
  }

  /** A one-time join token, kept hashed in etcd and expiring with its lease. */
  async newToken(ttlSec = 3600): Promise<JoinTicket> {
    if (!fs.existsSync(this.certs.caKey))
      throw new Error('this host does not hold the cluster CA: make join tokens on the host where the cluster was made');
    const { token, hash } = makeToken(this.config.clusterId);
    const lease = this.etcd.lease(ttlSec, { autoKeepAlive: false });
    await lease.put(keys.joinToken(hash)).value(String(Date.now()));
    lease.release();
    const url = clientUrl(this.config.address, this.config.ports.join);
    return {
      token,
      fingerprint: this.config.clusterId,
      url,
      command: `corral cluster join ${url} --token ${token}`,
      expiresAt: Date.now() + ttlSec * 1000,
    };
  }

  async status(): Promise<ClusterStatus> {
    const hosts = [...this.directory.hosts.values()].map((h) => {
      const a = this.directory.alive.get(h.id);
      return {
        id: h.id,
        name: h.name,
        address: h.address,
        etcdRole: h.etcdRole,
        reporting: Boolean(a),
        self: h.id === this.config.hostId,
        cpus: a?.cpus ?? null,
        memoryBytes: a?.memoryBytes ?? null,
        committedBytes: a?.committedBytes ?? null,
        vms: a?.vms ?? null,
        running: a?.running ?? null,
        overcommit: a?.overcommit ?? null,
        availableBytes: a?.availableBytes ?? null,
        cpuPercent: a?.cpuPercent ?? null,
        maintenance: this.maintenance.of(h.id) !== null,
      };
    });
    let members: ClusterStatus['members'] = [];
    let leader: string | null = null;
    let problem: string | null = null;
    try {
      const [list, st] = await Promise.all([this.etcd.cluster.memberList({}), this.etcd.maintenance.status({})]);
      members = list.members.map((m) => ({
        id: m.ID,
        name: m.name,
        peerUrls: m.peerURLs,
        clientUrls: m.clientURLs,
        leader: m.ID === st.leader,
        started: Boolean(m.name),
      }));
      leader = members.find((m) => m.leader)?.name || null;
    } catch (err) {
      problem = `etcd: ${(err as Error).message}`;
    }
    return { clustered: true, clusterId: this.config.clusterId, self: this.config.hostId, hosts, members, leader, problem };
  }

  /**
   * Leaves the cluster: this host's VMs stay here as a single host's, its certificate is revoked
   * (every peer refuses it), its etcd member is removed, and its cluster files are deleted.
   */
  async leave(): Promise<void> {
    const me = this.config.hostId;
    await this.etcd.put(keys.revokedHost(me)).value(String(Date.now()));
    for (const vm of this.deps.vms.service.list()) {
      await this.etcd.delete().key(keys.config(vm.id));
      await this.etcd.delete().key(keys.haOwner(vm.id));
      await this.inventory.releaseName(vm.name, vm.id);
    }
    await this.etcd.delete().prefix(keys.inventoryOf(me));
    await this.etcd.delete().key(keys.host(me));
    await this.lease.revoke();
    await this.ha.close(true);
    if (this.member) {
      const list = await this.etcd.cluster.memberList({});
      const mine = list.members.find((m) => m.name === me);
      if (mine && list.members.length > 1) await removeMember(this.etcd, mine.ID);
    }
    await this.close();
    fs.rmSync(clusterDir(this.deps.dataDir), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.alive?.close();
    if (this.alive) this.deps.vms.journal.off('changed', this.alive.soon);
    for (const s of this.servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    // a cluster without quorum does not answer a watch's cancel: never wait for it long
    await within(3000, this.ha.close());
    await within(3000, this.inventory.close());
    await within(3000, this.directory.close());
    await within(3000, this.maintenance.close());
    await within(3000, this.evacuations.close());
    await within(3000, this.migrations.close());
    this.peers.close();
    this.lease?.close();
    this.etcd.close();
    await this.member?.stop();
  }

  persist(): void {
    writeClusterConfig(this.deps.dataDir, this.config);
  }
}

/** A client of the cluster's etcd, authenticated by this host's certificate. */
export function etcdClient(certs: CertPaths, endpoints: string[]): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    credentials: {
      rootCertificate: fs.readFileSync(certs.ca),
      certChain: fs.readFileSync(certs.cert),
      privateKey: fs.readFileSync(certs.key),
    },
    dialTimeout: 5000,
    defaultCallOptions: etcdCallOptions,
    faultHandling: etcdFaultHandling(endpoints.length),
  });
}

/** This host's etcd member, as its config describes it. */
export function memberFor(deps: ClusterDeps, cfg: ClusterConfig): EtcdMember {
  const certs = certPaths(clusterDir(deps.dataDir));
  const member = new EtcdMember({
    name: cfg.hostId,
    dataDir: `${certs.dir}/etcd`,
    address: cfg.address,
    clientPort: cfg.ports.etcdClient,
    peerPort: cfg.ports.etcdPeer,
    certs,
    initialCluster: cfg.initialCluster ?? `${cfg.hostId}=${clientUrl(cfg.address, cfg.ports.etcdPeer)}`,
    initialState: cfg.initialState ?? 'new',
    binary: deps.etcdBinary,
    log: deps.log,
  });
  member.on('exited', (code, signal) => deps.log(`cluster: etcd member ended (${signal ?? code})`));
  return member;
}

/** Makes a joining host's etcd learner a voting member once it has caught up with the leader. */
export async function promote(etcd: Etcd3, memberId: string): Promise<void> {
  const deadline = Date.now() + ETCD_READY_MS;
  for (;;) {
    try {
      await etcd.cluster.memberPromote({ ID: memberId });
      return;
    } catch (err) {
      // "can only promote a learner member which is in sync with leader": wait and retry
      if (Date.now() > deadline) throw new Error(`this host's etcd member did not catch up with the cluster: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** etcd refuses a removal while a member came back too recently ("unhealthy cluster"): retry a while. */
async function removeMember(etcd: Etcd3, id: string): Promise<void> {
  await whileUnhealthy(() => etcd.cluster.memberRemove({ ID: id }), ETCD_READY_MS);
}

/**
 * etcd refuses a member change until its leader has been connected to every voting member for
 * 5 s ("unhealthy cluster"): a host joining right after another waits for it. Tries are 6 s
 * apart because the client counts each refusal against the endpoint and, after three in a
 * row, refuses every call for 5 s (its circuit breaker): closer tries would only meet that.
 */
export async function whileUnhealthy<T>(change: () => Promise<T>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await change();
    } catch (err) {
      if (!/unhealthy cluster|circuit breaker is open/.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 6000));
    }
  }
}

function within(ms: number, p: Promise<unknown>): Promise<unknown> {
  return Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, ms).unref())]);
}

export const newHostId = () => `h${randomBytes(8).toString('hex')}`;
