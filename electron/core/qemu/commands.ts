// Every QMP command Corral sends, typed: the only place that spells a command's name and
// arguments. The rest of the core calls these methods, never a raw execute().
import { diskBackendQom, diskNode } from './ids.js';
import { QmpError } from './qmp.js';

/** What the commands need of a QMP connection (the real client, or the fake driver's). */
export interface QmpLink {
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  readonly closed: boolean;
}

export interface QmpStatus {
  status: string;
  running: boolean;
}

export interface HotpluggableCpu {
  type: string;
  props: Record<string, number>;
  'qom-path'?: string;
}

export interface BlockStats {
  device?: string;
  'node-name'?: string;
  qdev?: string;
  stats: { rd_bytes: number; wr_bytes: number };
}

export interface IoLimits {
  bps: number;
  iops: number;
}

/** A background job as query-jobs shows it (snapshot-save/-load/-delete report 0/1 then 1/1). */
export interface QemuJob {
  id: string;
  type: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

/** What a snapshot job works on: the tag, the node that takes the RAM (save, load), the nodes that hold the tag. */
export interface SnapshotJobArgs {
  jobId: string;
  tag: string;
  vmstate?: string;
  devices: string[];
}

export class QemuCommands {
  private replies = 0;

  constructor(readonly link: QmpLink) {}

  get closed(): boolean {
    return this.link.closed;
  }

  /**
   * How many commands QEMU has answered (an error is an answer too). QMP is served by QEMU's
   * main loop, so a count that moves proves the loop alive: hang detection need not ask again.
   */
  get answered(): number {
    return this.replies;
  }

  private execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    return this.link.execute<T>(command, args, timeoutMs).then(
      (r) => {
        this.replies++;
        return r;
      },
      (err: unknown) => {
        if (err instanceof QmpError) this.replies++;
        throw err;
      },
    );
  }

  /** Runs a guest held at -S, or resumes a paused one. */
  cont(): Promise<void> {
    return this.execute('cont');
  }

  /** Pauses the guest's vCPUs. */
  stop(): Promise<void> {
    return this.execute('stop');
  }

  /** The ACPI power button. */
  powerdown(): Promise<void> {
    return this.execute('system_powerdown');
  }

  reset(): Promise<void> {
    return this.execute('system_reset');
  }

  queryStatus(timeoutMs?: number): Promise<QmpStatus> {
    return this.execute<QmpStatus>('query-status', undefined, timeoutMs);
  }

  /** Whether a client is connected to a socket chardev (QEMU shows "disconnected:…" until one is). */
  async chardevConnected(label: string, timeoutMs?: number): Promise<boolean> {
    const devs = await this.execute<Array<{ label: string; filename: string }>>('query-chardev', undefined, timeoutMs);
    const dev = devs.find((d) => d.label === label);
    return !!dev && !dev.filename.startsWith('disconnected:');
  }

  /** The balloon target: the memory the guest may use, in bytes. */
  setBalloon(bytes: number): Promise<void> {
    return this.execute('balloon', { value: bytes });
  }

  /** The guest's current memory per the balloon, in bytes (fails when there is no balloon). */
  async queryBalloon(timeoutMs?: number): Promise<number> {
    return (await this.execute<{ actual: number }>('query-balloon', undefined, timeoutMs)).actual;
  }

  queryHotpluggableCpus(): Promise<HotpluggableCpu[]> {
    return this.execute<HotpluggableCpu[]>('query-hotpluggable-cpus');
  }

  /** Plugs a vCPU into a free slot (props as query-hotpluggable-cpus gave them). */
  addCpu(type: string, id: string, props: Record<string, number>): Promise<void> {
    return this.execute('device_add', { driver: type, id, ...props });
  }

  /** A network backend on a running VM (netdev_add: type, id and the type's options). */
  netdevAdd(args: Record<string, unknown>): Promise<void> {
    return this.execute('netdev_add', args);
  }

  netdevDel(id: string): Promise<void> {
    return this.execute('netdev_del', { id });
  }

  /**
   * Has QEMU announce these NICs (by device id) to their backends: a RARP with each NIC's MAC,
   * plus a gratuitous ARP from a virtio guest that offers it. A new passt learns the guest's MAC
   * from the first frame it gets; until then it sends to broadcast, which a guest's TCP drops.
   */
  announceNics(deviceIds: string[]): Promise<void> {
    return this.execute('announce-self', { initial: 50, max: 550, rounds: 3, step: 100, interfaces: deviceIds });
  }

  /** Asks the guest to let go of a device; DEVICE_DELETED says when it has. */
  deleteDevice(id: string): Promise<void> {
    return this.execute('device_del', { id });
  }

  /**
   * Adds a host forward to a running slirp netdev. QMP has no command for it: HMP's
   * hostfwd_add, which answers nothing on success and says what went wrong otherwise.
   */
  async slirpForwardAdd(netdevId: string, rule: string): Promise<void> {
    const said = (await this.execute<string>('human-monitor-command', { 'command-line': `hostfwd_add ${netdevId} ${rule}` })).trim();
    if (said) throw new Error(`slirp refused the forward ${rule}: ${said}`);
  }

  /** Removes a host forward from a running slirp netdev (HMP hostfwd_remove; rule: proto:addr:port). */
  async slirpForwardRemove(netdevId: string, rule: string): Promise<void> {
    const said = (await this.execute<string>('human-monitor-command', { 'command-line': `hostfwd_remove ${netdevId} ${rule}` })).trim();
    if (!/removed/.test(said)) throw new Error(`slirp did not remove the forward ${rule}: ${said || 'no answer'}`);
  }

  /** Plugs a NIC device (virtio-net-pci) into a hotplug port. */
  addNicDevice(props: Record<string, unknown>): Promise<void> {
    return this.execute('device_add', props);
  }

  /** Disk i's throughput and IOPS limits (0: none). */
  throttleDisk(i: number, l: IoLimits): Promise<void> {
    return this.execute('block_set_io_throttle', {
      id: diskBackendQom(i),
      bps: l.bps,
      bps_rd: 0,
      bps_wr: 0,
      iops: l.iops,
      iops_rd: 0,
      iops_wr: 0,
    });
  }

  /** Grows disk i's image to `bytes` while the guest runs. */
  resizeDisk(i: number, bytes: number): Promise<void> {
    return this.execute('block_resize', { 'node-name': diskNode(i), size: bytes }, 30_000);
  }

  queryBlockstats(timeoutMs?: number): Promise<BlockStats[]> {
    return this.execute<BlockStats[]>('query-blockstats', undefined, timeoutMs);
  }

  /** Writes the screen as PNG to `file` (a path QEMU can write: the VM's run dir). */
  screendump(file: string): Promise<void> {
    return this.execute('screendump', { filename: file, format: 'png' }, 10_000);
  }

  /**
   * Starts a snapshot-save, snapshot-load or snapshot-delete job (QEMU 6.0+). Its end comes as a
   * JOB_STATUS_CHANGE event ("concluded"); queryJobs then tells whether it failed.
   */
  startSnapshotJob(kind: 'save' | 'load' | 'delete', a: SnapshotJobArgs): Promise<void> {
    return this.execute(
      `snapshot-${kind}`,
      { 'job-id': a.jobId, tag: a.tag, ...(a.vmstate ? { vmstate: a.vmstate } : {}), devices: a.devices },
      // the job may run before QEMU sends this answer: it can take as long as the job
      600_000,
    );
  }

  /** A snapshot job keeps QEMU's main loop busy while it runs: the answer may take as long as the job. */
  queryJobs(timeoutMs = 600_000): Promise<QemuJob[]> {
    return this.execute<QemuJob[]>('query-jobs', undefined, timeoutMs);
  }

  dismissJob(id: string): Promise<void> {
    return this.execute('job-dismiss', { id });
  }

  /**
   * The internal snapshot tags each block node holds, by node name: what QEMU itself has open,
   * in one round trip (no qemu-img beside a running QEMU).
   */
  async snapshotTags(): Promise<Map<string, string[]>> {
    const held = await this.snapshotsHeld();
    return new Map([...held].map(([node, snaps]) => [node, snaps.map((s) => s.tag)]));
  }

  /** As `snapshotTags`, with the size of the RAM state each snapshot holds (0: disks only). */
  async snapshotsHeld(): Promise<Map<string, Array<{ tag: string; vmStateBytes: number }>>> {
    type Node = { 'node-name': string; image?: { snapshots?: Array<{ name: string; 'vm-state-size'?: number }> } };
    const nodes = await this.execute<Node[]>('query-named-block-nodes', { flat: true });
    return new Map(
      nodes.map((n) => [n['node-name'], (n.image?.snapshots ?? []).map((s) => ({ tag: s.name, vmStateBytes: s['vm-state-size'] ?? 0 }))]),
    );
  }

  /** Internal snapshots of several nodes at one instant, without RAM (snapshot-save needs a vmstate). */
  internalSnapshots(nodes: string[], tag: string): Promise<void> {
    return this.execute(
      'transaction',
      { actions: nodes.map((device) => ({ type: 'blockdev-snapshot-internal-sync', data: { device, name: tag } })) },
      600_000,
    );
  }

  /** A human monitor command; the caller has checked it against the read-only allowlist. */
  humanMonitor(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, 10_000);
  }
}
