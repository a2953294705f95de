// passt, one per passt NIC: user-mode networking in its own sandboxed process (no privileges,
// namespaces of its own), detached like QEMU, so a host restart leaves the guest's network up.
// QEMU listens on a unix socket the host binds in the private run dir and hands over as an fd
// (`-netdev stream,server=on,addr.type=fd`); a new connection to it, made with large buffers
// (see CONNECT_AND_RUN), is handed to passt (--fd): passt never binds anything, so it needs no
// way into the run dir after dropping to its own user. QEMU 7.2's stream server goes back to
// listening on the same fd when its peer closes, so a passt that dies is replaced by a new one
// on a new connection to the same socket, and the guest sees no more than a short outage. (Had QEMU bound the path itself,
// it would listen anew after dropping to its own user, and that failed here.)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Nic, PortForward } from '../api/contract.js';
import type { VmFiles } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { isAlive, processArgv, processStartTime, readPidFile } from './proc.js';
import type { QemuUser } from './run-as.js';

export function passtBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORRAL_PASST ?? 'passt';
}

const NOT_INSTALLED = 'passt is not installed: install it (Debian/Ubuntu: sudo apt install passt) or give the NIC the kind "user"';

/** Whether passt can be run here (new VMs then get passt NICs). */
export function passtInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  return runnable(passtBinary(env), env);
}

/** Whether `bin` can be run: a path that exists, or a name found on PATH. */
function runnable(bin: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (bin.includes('/')) return fs.existsSync(bin);
  return (env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, bin)));
}

/**
 * Whether this host has a default route (IPv4 or IPv6) in its network namespace. passt gives
 * the guest a copy of the host's external interface and refuses to start without one ("External
 * interface not usable"): an isolated host, or a namespace with only a LAN, uses slirp instead.
 */
export function hasDefaultRoute(procNet = '/proc/net'): boolean {
  const read = (f: string) => {
    try {
      return fs.readFileSync(path.join(procNet, f), 'utf8');
    } catch {
      return '';
    }
  };
  // route: Iface Destination Gateway … with Destination 00000000 for the default
  const v4 = read('route')
    .split('\n')
    .slice(1)
    .some((l) => l.split('\t')[1] === '00000000');
  // ipv6_route: destination, prefix length, … device last; ::/0 on a device other than lo
  const v6 = read('ipv6_route')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[0] === '0'.repeat(32) && f[1] === '00' && f.at(-1) !== 'lo';
    });
  return v4 || v6;
}

export interface PasstProcess {
  nicId: string;
  pid: number;
  pidStart: string | null;
}

/**
 * QEMU's socket for the NIC. Named for the NIC alone: the run dir is sized so that serial.sock
 * fits a socket path, and "net99.sock" is no longer than that.
 */
export const passtSocket = (files: VmFiles, nicId: string) => path.join(files.runDir, `${nicId}.sock`);
export const passtPidFile = (files: VmFiles, nicId: string) => path.join(files.runDir, `passt-${nicId}.pid`);
/** Also passt's identity: only this VM's passt for this NIC has this path in its argv. */
export const passtLog = (files: VmFiles, nicId: string) => path.join(files.dir, `passt-${nicId}.log`);

/** passt's -t/-u: [ADDRESS/]PORT:GUESTPORT; 0.0.0.0 is every address (no address given). */
export function passtForwardArgs(forwards: readonly PortForward[]): string[] {
  return forwards.flatMap((f) => [
    f.proto === 'udp' ? '-u' : '-t',
    `${f.hostAddr === '0.0.0.0' ? '' : `${f.hostAddr}/`}${f.hostPort}:${f.guestPort}`,
  ]);
}

/**
 * The listening socket QEMU gets for a NIC (its fd, to be inherited; close() once QEMU has it).
 * Bound under a temporary name and renamed: Node removes the path it bound when the host
 * closes its copy, and the path must stay for the next passt.
 */
export async function listenForPasst(files: VmFiles, nicId: string): Promise<{ fd: number; close(): void }> {
  ensurePrivateDir(files.runDir, files.runBase);
  const final = passtSocket(files, nicId);
  const temp = `${final}.new`;
  for (const f of [final, temp]) fs.rmSync(f, { force: true });
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(temp, resolve);
  });
  // like every socket of the run dir: the host connects to it, nobody else
  fs.chmodSync(temp, 0o600);
  fs.renameSync(temp, final);
  return { fd: (server as unknown as { _handle: { fd: number } })._handle.fd, close: () => server.close() };
}

/**
 * passt's end of QEMU's socket, made with large buffers, then passt run on it (`--fd`). passt
 * sizes the buffers of a socket it accepts itself (`-s`), never of one it is handed, and at
 * the default 208 KiB its frames to QEMU were dropped under load until it reset the host's
 * connections through the forwards. Node cannot size a unix socket's buffers; Perl can, and
 * every Debian and Ubuntu has it (perl-base is essential). The kernel caps the size at
 * net.core.wmem_max / rmem_max. Perl execs passt: the pid is passt's.
 */
const CONNECT_AND_RUN = `
use Socket;
$^F = 1 << 20; # the socket stays open across exec
my ($path, $bin, @args) = @ARGV;
socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
setsockopt($s, SOL_SOCKET, $_, pack('i', 1 << 30)) for (SO_SNDBUF, SO_RCVBUF);
connect($s, pack_sockaddr_un($path)) or die "cannot reach QEMU's network socket: $!\n";
exec { $bin } $bin, '--fd', fileno($s), @args or die "cannot run $bin: $!\n";
`;

/** A connection to QEMU's socket for the NIC, not read by the host: it is passt's to use. */
function connectQemu(file: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = new net.Socket();
    // paused before it connects, so Node never reads a frame meant for passt
    s.pause();
    s.once('error', (err) => reject(new Error(`cannot reach QEMU's network socket ${path.basename(file)}: ${err.message}`)));
    s.connect(file, () => resolve(s));
  });
}

/**
 * passt on a new connection to QEMU's socket `sock`: made by Perl (large buffers), or, where
 * there is no Perl, the host's connection `conn`. Synchronous, so that the caller hears the
 * child's 'spawn' and 'error' events.
 */
function spawnPasst(sock: string, bin: string, args: string[], conn: net.Socket | null): ChildProcess {
  // -f: passt's own daemon mode forks in ways that failed in containers; the host detaches it
  if (!conn)
    return spawn('perl', ['-e', CONNECT_AND_RUN, '--', sock, bin, ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
    return spawn(bin, ['--fd', '3', ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe', fd] });
  } finally {
    // passt has its own copy now (or none, if it never started)
    conn.destroy();
  }
}

/**
 * Starts passt for a NIC of a running QEMU (held at -S or running), on a new connection to the
 * NIC's socket. Ends a passt left for that NIC first. Rejects if passt refuses to start (a
 * forwarded port in use, say), with what it said.
 */
export async function startPasst(files: VmFiles, nic: Nic, user: QemuUser | null, bin = passtBinary()): Promise<PasstProcess> {
  ensurePrivateDir(files.runDir, files.runBase);
  stopPasst(files, nic.id);
  const log = passtLog(files, nic.id);
  const args = ['-f', '-q', '-l', log, ...passtForwardArgs(nic.forwards)];
  // as root passt would drop to nobody; QEMU's own user keeps Corral's processes in one account
  if (user) args.push('--runas', `${user.uid}:${user.gid}`);
  if (!runnable(bin)) throw new Error(NOT_INSTALLED);
  const sock = passtSocket(files, nic.id);
  const child = spawnPasst(sock, bin, args, runnable('perl') ? null : await connectQemu(sock));
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(NOT_INSTALLED) : err));
    child.once('spawn', () => resolve(child.pid!));
  });
  try {
    // recorded at once: whatever happens next, the next stop finds it
    fs.writeFileSync(passtPidFile(files, nic.id), `${pid}\n`, { mode: 0o600 });
    // passt checks its options and binds the forwarded ports first: an early exit is a refusal
    const early = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 300);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code ?? 1);
      });
    });
    if (early !== null) {
      const said = Buffer.concat(stderr)
        .toString()
        .split('\n')
        .filter((l) => l && !/syslog/.test(l))
        .slice(-2)
        .join('; ');
      throw new Error(`passt for ${nic.id} did not start (exit ${early}): ${said || 'see its log'}`);
    }
  } catch (err) {
    child.kill('SIGKILL');
    fs.rmSync(passtPidFile(files, nic.id), { force: true });
    throw err;
  }
  child.stderr?.destroy();
  child.unref();
  return { nicId: nic.id, pid, pidStart: processStartTime(pid) };
}

/** The VM's passt for this NIC if it still runs (pidfile and identity), or null. */
export function findPasst(files: VmFiles, nicId: string): PasstProcess | null {
  const pid = readPidFile(passtPidFile(files, nicId));
  if (!pid || !isOurPasst(pid, files, nicId)) return null;
  return { nicId, pid, pidStart: processStartTime(pid) };
}

function isOurPasst(pid: number, files: VmFiles, nicId: string, pidStart?: string | null): boolean {
  const now = processStartTime(pid);
  if (!now || (pidStart && now !== pidStart)) return false;
  return !!processArgv(pid)?.includes(passtLog(files, nicId));
}

export function passtAlive(p: PasstProcess, files: VmFiles): boolean {
  return isAlive(p.pid) && isOurPasst(p.pid, files, p.nicId, p.pidStart);
}

/** Ends this NIC's passt if one is left and removes its pidfile. */
export function stopPasst(files: VmFiles, nicId: string): void {
  const left = findPasst(files, nicId);
  if (left) {
    try {
      process.kill(left.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  fs.rmSync(passtPidFile(files, nicId), { force: true });
}

/** Ends every passt of the VM (by the pidfiles in its run dir). */
export function stopAllPasst(files: VmFiles): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(files.runDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^passt-(net[0-9]+)\.pid$/.exec(n);
    if (m) stopPasst(files, m[1]!);
  }
}
