// Every file Corral keeps lives under one data dir; every per-VM file name is decided here.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CORRAL_DATA) return path.resolve(env.CORRAL_DATA);
  const base = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'corral');
}

export interface DataLayout {
  root: string;
  db: string;
  /** The CLI's control socket (0600). */
  controlSocket: string;
  /** Held by the one host that owns this data dir. */
  lockFile: string;
  /** Cached host capability probe. */
  probeCache: string;
  vmsDir: string;
  /** The default storage pool: created disks and uploads. */
  imagesDir: string;
}

export function dataLayout(root: string): DataLayout {
  return {
    root,
    db: path.join(root, 'corral.db'),
    controlSocket: path.join(root, 'control.sock'),
    lockFile: path.join(root, 'host.lock'),
    probeCache: path.join(root, 'qemu-probe.json'),
    vmsDir: path.join(root, 'vms'),
    imagesDir: path.join(root, 'images'),
  };
}

export interface VmFiles {
  /** Persistent per-VM dir: owned disks and logs. */
  dir: string;
  serialLog: string;
  qemuLog: string;
  /** Private 0700 dir for sockets and the pidfile. */
  runDir: string;
  /** Every dir between this one and runDir is Corral's own (checked strictly, see private-files). */
  runBase: string;
  /** A dir others share (such as /tmp) that runDir is below: checked up to /, or null. */
  sharedBase: string | null;
  qmpSocket: string;
  serialSocket: string;
  vncSocket: string;
  /** qemu-guest-agent's virtio-serial channel. */
  qgaSocket: string;
  pidFile: string;
  /** UEFI variables, qcow2 so that internal snapshots include them. */
  efiVars: string;
  /** swtpm's state (the TPM's identity and NVRAM): kept with the VM, like a disk. */
  tpmState: string;
  swtpmLog: string;
  /** swtpm's control socket and pidfile (in the run dir). */
  swtpmSocket: string;
  swtpmPidFile: string;
}

/** A VM's UEFI variables, in its folder: reset (copied again from the template) when its firmware changes. */
export const EFI_VARS_FILE = 'efivars.qcow2';

/** A VM's TPM state folder, in its folder. */
export const TPM_DIR = 'tpm';

// sun_path is 108 bytes including the NUL; keep a margin for the longest socket name.
const SOCKET_PATH_MAX = 100;

export function vmFiles(layout: DataLayout, vmId: string): VmFiles {
  const dir = path.join(layout.vmsDir, vmId);
  let runDir = path.join(dir, 'run');
  let runBase = layout.root;
  let sharedBase: string | null = null;
  if (Buffer.byteLength(path.join(runDir, 'serial.sock')) > SOCKET_PATH_MAX) {
    // Deep data dirs: sockets go to a short per-user dir instead, keyed by the data dir.
    const key = createHash('sha256').update(layout.root).digest('hex').slice(0, 10);
    const short = shortRunBase();
    runDir = path.join(short.own, `${key}-${vmId}`);
    runBase = sharedBase = short.shared;
  }
  return {
    dir,
    serialLog: path.join(dir, 'serial.log'),
    qemuLog: path.join(dir, 'qemu.log'),
    runDir,
    runBase,
    sharedBase,
    qmpSocket: path.join(runDir, 'qmp.sock'),
    serialSocket: path.join(runDir, 'serial.sock'),
    vncSocket: path.join(runDir, 'vnc.sock'),
    qgaSocket: path.join(runDir, 'qga.sock'),
    pidFile: path.join(runDir, 'qemu.pid'),
    efiVars: path.join(dir, EFI_VARS_FILE),
    tpmState: path.join(dir, TPM_DIR),
    swtpmLog: path.join(dir, 'swtpm.log'),
    swtpmSocket: path.join(runDir, 'swtpm.sock'),
    swtpmPidFile: path.join(runDir, 'swtpm.pid'),
  };
}

/** The user's runtime dir if short enough, else a per-user dir in the (shared) temp dir. */
function shortRunBase(): { shared: string; own: string } {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg) && Buffer.byteLength(xdg) < 40) return { shared: xdg, own: path.join(xdg, 'corral') };
  const tmp = os.tmpdir();
  return { shared: tmp, own: path.join(tmp, `corral-${process.getuid?.() ?? 'u'}`) };
}
