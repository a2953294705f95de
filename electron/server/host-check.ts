// The Host header check: a page on another site that rebinds its DNS name to this machine
// sends its own name, and is refused. Beyond loopback the allowed names are the machine's
// hostnames and the listen address, or those given with --allow-host.
import net from 'node:net';
import os from 'node:os';

export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The names a client may use for this server (lowercase, without brackets or port). */
export function allowedNames(bindHost: string, allow: string[] = []): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '::1']);
  if (isLoopbackBind(bindHost)) return names.add(bindHost.toLowerCase());
  if (allow.length) allow.forEach((n) => names.add(n.toLowerCase()));
  else {
    const h = os.hostname().toLowerCase();
    names.add(h);
    names.add(`${h.split('.')[0]}.local`);
  }
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.add(a.address.toLowerCase());
  } else names.add(bindHost.toLowerCase());
  return names;
}

/** Whether a Host header names this server: an allowed name and this port (or the scheme's default). */
export function hostAllowed(header: string | undefined, names: Set<string>, port: number, tls: boolean): boolean {
  if (!header) return false;
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d+))?$/i.exec(header.trim());
  if (!m) return false;
  const name = (m[1] ?? m[2]!).toLowerCase();
  const p = m[3] ? Number(m[3]) : tls ? 443 : 80;
  return p === port && names.has(name) && (m[1] === undefined || net.isIPv6(name));
}
