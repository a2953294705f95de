// CPU weight and cap through cgroup v2, where the host delegates a cgroup to Corral (e.g. a
// systemd user scope with Delegate=yes). Each VM's QEMU moves into a child cgroup of ours;
// without delegation the feature reports why it is unavailable instead of pretending.
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupStatus {
  available: boolean;
  reason: string | null;
}

const PERIOD_US = 100_000;

export class Cgroups {
  private root: string | null = null;
  status: CgroupStatus = { available: false, reason: 'not checked' };

  /**
   * mount: the cgroup2 mount point; self: this process's /proc/self/cgroup text.
   * Both injectable so the logic can be tested on a directory tree.
   */
  constructor(
    private readonly mount = '/sys/fs/cgroup',
    private readonly selfCgroup: () => string = () => fs.readFileSync('/proc/self/cgroup', 'utf8'),
    private readonly pid = process.pid,
  ) {}

  init(): CgroupStatus {
    this.status = this.setup();
    return this.status;
  }

  private setup(): CgroupStatus {
    if (!fs.existsSync(path.join(this.mount, 'cgroup.controllers'))) {
      return { available: false, reason: 'this host does not use cgroup v2 (unified hierarchy)' };
    }
    const own = /^0::(\/.*)$/m.exec(this.selfCgroup())?.[1];
    if (!own) return { available: false, reason: 'Corral is not in a cgroup v2 group' };
    const dir = path.join(this.mount, own);
    const controllers = read(path.join(dir, 'cgroup.controllers'));
    if (!/\bcpu\b/.test(controllers)) {
      return {
        available: false,
        reason: `the cpu controller is not delegated to Corral's cgroup (${own}); run Corral in a delegated systemd scope, e.g. systemd-run --user --scope -p Delegate=yes`,
      };
    }
    try {
      // cgroup v2 forbids processes in inner nodes: Corral itself moves to a leaf first
      const hostLeaf = path.join(dir, 'corral-host');
      fs.mkdirSync(hostLeaf, { recursive: true });
      fs.writeFileSync(path.join(hostLeaf, 'cgroup.procs'), String(this.pid));
      if (!/\bcpu\b/.test(read(path.join(dir, 'cgroup.subtree_control'))))
        fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), '+cpu');
    } catch (err) {
      return {
        available: false,
        reason: `Corral's cgroup ${own} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the host did not delegate it`,
      };
    }
    this.root = dir;
    return { available: true, reason: null };
  }

  /** Moves a VM's QEMU into its own cgroup and applies its limits. */
  place(vmId: string, pid: number, weight: number | null, capPercent: number | null): void {
    const dir = this.vmDir(vmId);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    this.apply(vmId, weight, capPercent);
  }

  apply(vmId: string, weight: number | null, capPercent: number | null): void {
    const dir = this.vmDir(vmId);
    fs.writeFileSync(path.join(dir, 'cpu.weight'), String(weight ?? 100));
    fs.writeFileSync(
      path.join(dir, 'cpu.max'),
      capPercent ? `${Math.round((capPercent / 100) * PERIOD_US)} ${PERIOD_US}` : `max ${PERIOD_US}`,
    );
  }

  remove(vmId: string): void {
    if (!this.root) return;
    try {
      fs.rmdirSync(this.vmDir(vmId));
    } catch {
      // still has a process, or already gone
    }
  }

  private vmDir(vmId: string): string {
    if (!this.root) throw new Error(`CPU weight and cap are unavailable: ${this.status.reason}`);
    if (!/^[0-9a-f]+$/.test(vmId)) throw new Error('bad VM id');
    return path.join(this.root, `vm-${vmId}`);
  }
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
