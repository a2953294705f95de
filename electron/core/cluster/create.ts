// vm.create in a cluster: on the host the caller names, or else on the host with the most room
// that admits the VM (placement.ts). Another host's creation goes over the peer API, where that
// host claims the name (names are the cluster's) and makes the VM as its own.
import { CorralError } from '../api/dispatcher.js';
import type { Args, VmInfo } from '../api/contract.js';
import { bootMemoryMiB } from '../api/rules.js';
import type { Cluster } from './cluster.js';
import type { ClusterVm } from './inventory.js';
import { keys } from './keys.js';
import { judge, rank, refusal, type Admit, type PlacementHost } from './placement.js';

export type CreateHere = Omit<Args<'vm.create'>, 'host'>;
const MiB = 1024 * 1024;

/** Creates the VM on this host under a cluster-wide claim of its name. */
export async function createHere(c: Cluster, a: CreateHere, make: (a: CreateHere) => Promise<VmInfo>): Promise<ClusterVm> {
  const claim = `pending-${c.config.hostId}-${Date.now()}`;
  if (!(await c.inventory.claimName(a.name, claim))) throw nameTaken(a.name);
  try {
    const vm = await make(a);
    await c.inventory.claimAs(a.name, claim, vm.id);
    return { ...vm, host: { id: c.config.hostId, name: c.config.name, reporting: true } };
  } catch (err) {
    await c.inventory.releaseName(a.name, claim).catch(() => undefined);
    throw err;
  }
}

/** The hosts of the cluster with what each last published; this host's figures are read now. */
function hostsOf(c: Cluster): PlacementHost[] {
  const me = c.config.hostId;
  return [...c.directory.hosts.values()].map((h) => ({
    id: h.id,
    name: h.name,
    self: h.id === me,
    alive: h.id === me ? { at: Date.now(), ...c.deps.capacity() } : (c.directory.alive.get(h.id) ?? null),
  }));
}

export interface Placing {
  /** The host the caller named, if any. */
  host: string | undefined;
  make: (a: CreateHere) => Promise<VmInfo>;
  admit: Admit;
}

export async function createPlaced(c: Cluster, a: CreateHere, { host, make, admit }: Placing): Promise<ClusterVm> {
  const hosts = hostsOf(c);
  if (host !== undefined) {
    const target = c.directory.byName(host);
    if (!target)
      throw new CorralError(
        'invalid-argument',
        `no host named "${host}" in the cluster (its hosts: ${hosts.map((h) => h.name).join(', ')})`,
        'host',
      );
    return await createOn(
      c,
      hosts.find((h) => h.id === target.id)!,
      a,
      make,
    );
  }
  // a taken name is refused once, not by every host in turn
  if ((await c.etcd.get(keys.vmName(a.name)).string()) !== null) throw nameTaken(a.name);
  const verdicts = judge({ name: a.name, memoryBytes: bootMemoryMiB(a) * MiB }, hosts, admit);
  const reasons = verdicts.flatMap((v) => (v.ok ? [] : [{ host: v.host.name, why: v.why }]));
  const fields = new Set<string | undefined>();
  for (const target of rank(verdicts)) {
    try {
      return await createOn(c, target, a, make);
    } catch (err) {
      // what only the name decides fails the same on every host
      if (err instanceof CorralError && err.field === 'name') throw err;
      reasons.push({ host: target.name, why: (err as Error).message });
      fields.add(err instanceof CorralError ? err.field : undefined);
    }
  }
  // every host that tried refused the same field (a boot file in no pool of theirs): name it
  const [only] = fields.size === 1 ? [...fields] : [];
  throw new CorralError('conflict', refusal(a.name, reasons), only ?? 'host');
}

async function createOn(c: Cluster, target: PlacementHost, a: CreateHere, make: (a: CreateHere) => Promise<VmInfo>): Promise<ClusterVm> {
  if (target.self) return await createHere(c, a, make);
  if (!target.alive) throw new CorralError('conflict', `host "${target.name}" is not reporting: it cannot take a new VM now`, 'host');
  return (await c.peers.call(target.id, 'vm.create', a)) as ClusterVm;
}

const nameTaken = (name: string) => new CorralError('conflict', `a VM named "${name}" already exists in the cluster`, 'name');
