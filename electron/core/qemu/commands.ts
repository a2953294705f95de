// Every QMP command Corral sends, typed: the only place that spells a command's name and
// arguments. The rest of the core calls these methods, never a raw execute().
import { diskBackendQom, diskNode } from './ids.js';

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

export class QemuCommands {
  constructor(readonly link: QmpLink) {}

  get closed(): boolean {
    return this.link.closed;
  }

  /** Runs a guest held at -S, or resumes a paused one. */
  cont(): Promise<void> {
    return this.link.execute('cont');
  }

  /** Pauses the guest's vCPUs. */
  stop(): Promise<void> {
    return this.link.execute('stop');
  }

  /** The ACPI power button. */
  powerdown(): Promise<void> {
    return this.link.execute('system_powerdown');
  }

  reset(): Promise<void> {
    return this.link.execute('system_reset');
  }

  queryStatus(timeoutMs?: number): Promise<QmpStatus> {
    return this.link.execute<QmpStatus>('query-status', undefined, timeoutMs);
  }

  /** Whether a client is connected to a socket chardev (QEMU shows "disconnected:…" until one is). */
  async chardevConnected(label: string, timeoutMs?: number): Promise<boolean> {
    const devs = await this.link.execute<Array<{ label: string; filename: string }>>('query-chardev', undefined, timeoutMs);
    const dev = devs.find((d) => d.label === label);
    return !!dev && !dev.filename.startsWith('disconnected:');
  }

  /** The balloon target: the memory the guest may use, in bytes. */
  setBalloon(bytes: number): Promise<void> {
    return this.link.execute('balloon', { value: bytes });
  }

  /** The guest's current memory per the balloon, in bytes (fails when there is no balloon). */
  async queryBalloon(timeoutMs?: number): Promise<number> {
    return (await this.link.execute<{ actual: number }>('query-balloon', undefined, timeoutMs)).actual;
  }

  queryHotpluggableCpus(): Promise<HotpluggableCpu[]> {
    return this.link.execute<HotpluggableCpu[]>('query-hotpluggable-cpus');
  }

  /** Plugs a vCPU into a free slot (props as query-hotpluggable-cpus gave them). */
  addCpu(type: string, id: string, props: Record<string, number>): Promise<void> {
    return this.link.execute('device_add', { driver: type, id, ...props });
  }

  /** A network backend on a running VM (netdev_add: type, id and the type's options). */
  netdevAdd(args: Record<string, unknown>): Promise<void> {
    return this.link.execute('netdev_add', args);
  }

  netdevDel(id: string): Promise<void> {
    return this.link.execute('netdev_del', { id });
  }

  /** Plugs a NIC device (virtio-net-pci) into a hotplug port. */
  addNicDevice(props: Record<string, unknown>): Promise<void> {
    return this.link.execute('device_add', props);
  }

  /** Disk i's throughput and IOPS limits (0: none). */
  throttleDisk(i: number, l: IoLimits): Promise<void> {
    return this.link.execute('block_set_io_throttle', {
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
    return this.link.execute('block_resize', { 'node-name': diskNode(i), size: bytes }, 30_000);
  }

  queryBlockstats(timeoutMs?: number): Promise<BlockStats[]> {
    return this.link.execute<BlockStats[]>('query-blockstats', undefined, timeoutMs);
  }

  /** Writes the screen as PNG to `file` (a path QEMU can write: the VM's run dir). */
  screendump(file: string): Promise<void> {
    return this.link.execute('screendump', { filename: file, format: 'png' }, 10_000);
  }

  /** A human monitor command; the caller has checked it against the read-only allowlist. */
  humanMonitor(commandLine: string): Promise<string> {
    return this.link.execute<string>('human-monitor-command', { 'command-line': commandLine }, 10_000);
  }
}
