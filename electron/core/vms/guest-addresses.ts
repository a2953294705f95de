// A running guest's IPv4 addresses per NIC, from what the host can see without the guest's
// help: slirp hands out a fixed address, passt gives the guest the host's own address on its
// default route, and a bridged guest is in the host's neighbour table by its MAC (once the
// host has talked to it). A private network's addresses are the guests' own business.
import fs from 'node:fs';
import os from 'node:os';
import type { Nic, NicAddresses } from '../api/contract.js';

/** The address QEMU's slirp gives the first DHCP client. */
export const SLIRP_GUEST = '10.0.2.15';

/** IPv4 neighbours of the host by MAC (/proc/net/arp: IP, type, flags, MAC, mask, device). */
export function neighbours(text = readArp()): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    // 0x0: incomplete (no answer)
    if (!ip || !mac || flags === '0x0') continue;
    const key = mac.toLowerCase();
    out.set(key, [...(out.get(key) ?? []), ip]);
  }
  return out;
}

function readArp(): string {
  try {
    return fs.readFileSync('/proc/net/arp', 'utf8');
  } catch {
    return '';
  }
}

/** The host's IPv4 address on its default route: what passt gives its guests. */
export function defaultRouteAddress(routes = readRoutes()): string | null {
  for (const line of routes.split('\n').slice(1)) {
    const [iface, dest] = line.trim().split(/\s+/);
    if (iface && dest === '00000000') {
      const a = os.networkInterfaces()[iface]?.find((x) => x.family === 'IPv4');
      if (a) return a.address;
    }
  }
  return null;
}

function readRoutes(): string {
  try {
    return fs.readFileSync('/proc/net/route', 'utf8');
  } catch {
    return '';
  }
}

export function hostSeenAddresses(nics: readonly Nic[]): NicAddresses[] {
  const neigh = nics.some((n) => n.kind === 'bridge') ? neighbours() : new Map<string, string[]>();
  return nics.map((n): NicAddresses => {
    switch (n.kind) {
      case 'user':
        return { nic: n.id, addresses: [SLIRP_GUEST], source: 'host', note: 'the address slirp gives the guest over DHCP' };
      case 'passt': {
        const a = defaultRouteAddress();
        return { nic: n.id, addresses: a ? [a] : [], source: 'host', note: "passt gives the guest the host's own address over DHCP" };
      }
      case 'bridge':
        return {
          nic: n.id,
          addresses: neigh.get(n.mac) ?? [],
          source: 'host',
          note: "from the host's neighbour table: known once the host has exchanged packets with the guest",
        };
      case 'private':
        return { nic: n.id, addresses: [], source: 'unknown', note: 'set inside the guest; the host cannot see a private network' };
    }
  });
}
