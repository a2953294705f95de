// Every name Corral gives to something inside QEMU: block node names, device ids, chardev ids,
// netdev ids and QOM paths. The argv builder names things with these and QMP commands find them
// with these, so the two can never disagree (as paths.ts does for file names).

/** The image file under disk i (the protocol node). */
export const diskFileNode = (i: number) => `disk${i}-file`;
/** Disk i's format node: what block_resize and snapshots address. */
export const diskNode = (i: number) => `disk${i}`;
/** A linked clone's managed base under disk i: its file and (read-only) qcow2 nodes. */
export const diskBaseFileNode = (i: number) => `disk${i}-base-file`;
export const diskBaseNode = (i: number) => `disk${i}-base`;
/** Disk i's virtio-blk device. */
export const diskDevice = (i: number) => `disk${i}-dev`;
/** The block backend of disk i, inside its PCI proxy: what block_set_io_throttle addresses. */
export const diskBackendQom = (i: number) => `/machine/peripheral/${diskDevice(i)}/virtio-backend`;

export const CD_FILE_NODE = 'cd0-file';
export const CD_NODE = 'cd0';
export const CD_DEVICE = 'cd0-dev';

/** A NIC's netdev: its id in the config (net0, net1…); the first is what the one NIC was named before. */
export const netdev = (nicId: string) => nicId;
/** The empty PCIe root ports a NIC is hot-added into (q35's root bus takes no hotplug). */
export const NIC_HOTPLUG_PORTS = ['nichp0', 'nichp1'] as const;
/** A NIC's virtio-net device. */
export const nicDevice = (nicId: string) => `${nicId}-dev`;

export const QMP_CHARDEV = 'qmp';
export const SERIAL_CHARDEV = 'serial0';
export const AGENT_CHARDEV = 'qga0';
/** The virtio-serial port name qemu-guest-agent looks for. */
export const AGENT_PORT_NAME = 'org.qemu.guest_agent.0';

export const VIDEO_DEVICE = 'video0';
export const USB_CONTROLLER = 'usb';
export const TABLET_DEVICE = 'tablet0';
export const PVPANIC_DEVICE = 'pvpanic';
export const WATCHDOG_DEVICE = 'watchdog0';
export const RNG_DEVICE = 'rng0';
export const BALLOON_DEVICE = 'balloon0';
export const VIRTIO_SERIAL_DEVICE = 'vser0';

/** A hotplugged vCPU, named by its topology slot (socket, core, thread…). */
export const cpuDevice = (props: Record<string, number>) => `cpu-${Object.values(props).join('-')}`;

/** UEFI: the read-only firmware (pflash0) and the VM's own variables (pflash1). */
export const FW_CODE_FILE_NODE = 'fw-code-file';
export const FW_CODE_NODE = 'fw-code';
export const FW_VARS_FILE_NODE = 'fw-vars-file';
export const FW_VARS_NODE = 'fw-vars';

/** The TPM: swtpm's control socket, QEMU's emulator backend, the CRB device. */
export const TPM_CHARDEV = 'tpm0-chr';
export const TPM_BACKEND = 'tpm0';
export const TPM_DEVICE = 'tpm0-dev';

/** Guest RAM as a shared memfd (virtiofs needs virtiofsd to map it). */
export const RAM_BACKEND = 'ram0';
/** Shared folder i: virtiofs' vhost-user chardev, 9p's fsdev, and its PCI device. */
export const shareChardev = (i: number) => `fs${i}-chr`;
export const shareFsdev = (i: number) => `fs${i}-dev9p`;
export const shareDevice = (i: number) => `fs${i}-dev`;
