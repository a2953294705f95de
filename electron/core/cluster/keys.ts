// Every etcd key Corral uses, in one place: the cluster's layout in etcd is read here, so two
// features never pick the same name and a reader of etcd finds what each key means.
import { HA_PREFIX, ownerKey } from '../ha/owners-etcd.js';

const ROOT = '/corral/';

export const keys = {
  /** Each host's record (id, name, address, ports, role): written at join, removed at leave. */
  hosts: `${ROOT}hosts/`,
  host: (hostId: string) => `${ROOT}hosts/${hostId}`,
  /** A host's liveness: put with the host's lease, gone when it stops renewing. */
  aliveOf: (hostId: string) => `${ROOT}alive/${hostId}`,
  alive: `${ROOT}alive/`,
  /** Hosts that left: their certificates are refused by every peer API (checked per connection). */
  revoked: `${ROOT}revoked/`,
  revokedHost: (hostId: string) => `${ROOT}revoked/${hostId}`,
  /** A join token's hash; deleted in the same transaction that accepts it (one use), leased (expiry). */
  joinToken: (hash: string) => `${ROOT}join-tokens/${hash}`,
  /** The published inventory: one key per VM under its host, leased by that host. */
  inventory: `${ROOT}inventory/`,
  inventoryOf: (hostId: string) => `${ROOT}inventory/${hostId}/`,
  inventoryVm: (hostId: string, vmId: string) => `${ROOT}inventory/${hostId}/${vmId}`,
  /** A VM's config, unleased: it outlives its host. */
  config: (vmId: string) => `${ROOT}configs/${vmId}`,
  configs: `${ROOT}configs/`,
  /** VM names are unique across the cluster: name → VM id, claimed in a transaction. */
  vmName: (name: string) => `${ROOT}names/${Buffer.from(name).toString('base64url')}`,
  /** Hosts in maintenance (host evacuate → restore): what left and where to, unleased. */
  maintenance: `${ROOT}maintenance/`,
  maintenanceOf: (hostId: string) => `${ROOT}maintenance/${hostId}`,
  /** The last step of each host's evacuation or restore, watched by every host for its subscribers. */
  evacuationProgress: `${ROOT}evacuation-progress/`,
  evacuationProgressOf: (hostId: string) => `${ROOT}evacuation-progress/${hostId}`,
  /** The last step of the migrations each host sends away, watched by every host for its subscribers. */
  migrationProgress: `${ROOT}migration-progress/`,
  migrationProgressOf: (hostId: string) => `${ROOT}migration-progress/${hostId}`,
  /** HA: who runs each HA VM at which epoch (ha/owners-etcd.ts), by VM id; unleased. */
  haOwners: `${HA_PREFIX}owners/`,
  haOwner: ownerKey,
  /** HA: a host's liveness for failover, on the lease its fencer guards (shared pools in its value). */
  haAlive: `${HA_PREFIX}alive/`,
  haAliveOf: (hostId: string) => `${HA_PREFIX}alive/${hostId}`,
  /** HA: each VM's last failover and its timeline (lease expired, fenced, reassigned, started). */
  haFailovers: `${HA_PREFIX}failovers/`,
  haFailover: (vmId: string) => `${HA_PREFIX}failovers/${vmId}`,
  /** HA: load balancing on or off for the whole cluster ("on" | "off"; absent: off), unleased. */
  haBalance: `${HA_PREFIX}balance`,
  /** HA: each VM's last move by load balancing (cluster/shed-records.ts): its cooldown outlives a leader. */
  haSheds: `${HA_PREFIX}shed/`,
  haShed: (vmId: string) => `${HA_PREFIX}shed/${vmId}`,
  /** HA: the election of the leader that reassigns a dead host's HA VMs. */
  haElection: 'corral-ha-leader',
  /** The cluster's id (the CA fingerprint), written once at init. */
  clusterId: `${ROOT}cluster-id`,
} as const;

/** The host id in an inventory key, or null. */
export function hostOfInventoryKey(key: string): { hostId: string; vmId: string } | null {
  if (!key.startsWith(keys.inventory)) return null;
  const [hostId, vmId] = key.slice(keys.inventory.length).split('/');
  return hostId && vmId ? { hostId, vmId } : null;
}
