// Who holds a host port a forward wants: the kernel's socket tables give the socket's inode,
// and the process with that socket among its open files is the holder. Said in the refusal so
// the user knows what to stop (a process of another user stays unnamed unless the host is root).
import fs from 'node:fs';

/** Inodes of the sockets bound to `port` (tcp: listening) in /proc/net/{proto}{,6}. */
export function socketInodes(proto: 'tcp' | 'udp', port: number, tables = readTables(proto)): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<string>();
  for (const text of tables)
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || local.split(':')[1] !== hexPort) continue;
      if (proto === 'tcp' && f[3] !== '0A') continue; // LISTEN
      if (f[9] && f[9] !== '0') out.add(f[9]);
    }
  return out;
}

function readTables(proto: 'tcp' | 'udp'): string[] {
  return [`/proc/net/${proto}`, `/proc/net/${proto}6`].flatMap((p) => {
    try {
      return [fs.readFileSync(p, 'utf8')];
    } catch {
      return [];
    }
  });
}

/** "nginx, pid 812": the first process holding one of the sockets; null when none can be seen. */
export function socketHolder(inodes: ReadonlySet<string>): string | null {
  if (!inodes.size) return null;
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m || !inodes.has(m[1]!)) continue;
      let name = '?';
      try {
        name = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // ended meanwhile: the pid still says who it was
      }
      return `${name}, pid ${pid}`;
    }
  }
  return null;
}

/** Who holds the port, as far as this host can see. */
export function portHolder(proto: 'tcp' | 'udp', port: number): string | null {
  return socketHolder(socketInodes(proto, port));
}
