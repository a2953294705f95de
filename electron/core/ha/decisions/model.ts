// What the HA decisions need to know about the cluster, and nothing more. The cluster layer
// (members, inventory, etcd keys) provides it through ClusterView; the decisions stay pure so
// that scenario tests play them on a fake clock.

/** A VM's HA settings (VmConfig.ha). */
export interface HaSettings {
  enabled: boolean;
  /** Higher first when several VMs need a new host at once. */
  priority: number;
  /** Anti-affinity: two VMs of one group never share a host. */
  group: string | null;
  /** Preferred hosts, in order; any live host with room when none of them has. */
  hosts: string[];
}

export const HA_DEFAULTS: HaSettings = { enabled: false, priority: 0, group: null, hosts: [] };

export interface HostView {
  id: string;
  /** Holds a live lease. */
  alive: boolean;
  memMiB: number;
  cpus: number;
  /** Its shared pools, name → path: an HA VM runs only where its own are, under the same path. */
  pools?: Record<string, string>;
  /** Measured now (for load shedding): memory in use and cores busy, whole host. */
  memUsedMiB?: number;
  cpuUsed?: number;
  /** HA VMs (by name) this host could not run, and why (its QEMU's problemFor): never a balancing target for them. */
  cannotRun?: Record<string, string>;
}

export interface HaVm {
  name: string;
  owner: string;
  /** Bumped by every ownership move; a host starts the VM only as owner at the current epoch. */
  epoch: number;
  /** What admission counts on its host (boot memory). */
  memMiB: number;
  cpus: number;
  ha: HaSettings;
  /** The shared pools its files are in, name → path (see vms/ha-storage.ts). */
  pools?: Record<string, string>;
  /** Measured now: memory and cores in use (for load shedding). */
  memUsedMiB?: number;
  cpuUsed?: number;
  /** Why load balancing may not live-migrate it now (not running, a TPM), or absent. */
  cannotMove?: string;
}

/** What the cluster layer gives HA: the merge wires it to the inventory and the members. */
export interface ClusterView {
  hosts(): HostView[];
  vms(): HaVm[];
}

export interface Move {
  vm: string;
  from: string;
  to: string;
  /** The epoch the move writes (the VM's epoch + 1). */
  epoch: number;
  why: string;
}
