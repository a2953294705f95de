// Machines that move: clones, export and import of bundles and OVAs, as jobs with progress and
// cancel. Sits on top of the VM layer (vms/) and talks to it through its context.
import type { Args, BaseInfo, VmConfig, VmInfo } from '../api/contract.js';
import { deleteBase, listBases } from '../vms/bases.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmContext } from '../vms/context.js';
import { cloneVm } from './clone.js';
import { exportVm } from './export.js';
import { importVm } from './import.js';
import { Jobs, type JobProgress } from './jobs.js';

type Send = (p: JobProgress) => void;

export class Portable {
  readonly jobs = new Jobs();

  constructor(
    private readonly ctx: VmContext,
    /** Exports with `snapshots` read the tree from it; imports of such bundles write it. */
    private readonly snapshots: SnapshotRepo,
  ) {}

  /** `from`: the snapshot named by `a.fromSnapshot`, resolved by the snapshot layer. */
  clone(a: Args<'vm.clone'>, send: Send, from?: { tag: string; config: VmConfig }): Promise<VmInfo> {
    const { job, fromSnapshot: _named, ...rest } = a;
    return this.jobs.run(job, 'clone', a.vm, send, (j) => cloneVm(this.ctx, { ...rest, from }, j));
  }

  export(a: Args<'vm.export'>, send: Send): Promise<{ file: string; size: number }> {
    const { job, ...rest } = a;
    return this.jobs.run(job, 'export', a.vm, send, (j) => exportVm(this.ctx, this.snapshots, rest, j));
  }

  import(a: Args<'vm.import'>, send: Send): Promise<VmInfo> {
    const { job, ...rest } = a;
    return this.jobs.run(job, 'import', a.name ?? a.file, send, (j) => importVm(this.ctx, this.snapshots, rest, j));
  }

  cancel(job: string): void {
    this.jobs.cancel(job);
  }

  bases(): BaseInfo[] {
    return listBases(this.ctx).map((b) => ({ ...b, dependents: b.dependents.map((d) => d.vmName) }));
  }

  deleteBase(path: string): void {
    deleteBase(this.ctx, path);
  }
}
