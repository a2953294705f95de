// A running guest's addresses from its guest agent (guest-network-get-interfaces) when it runs
// one, matched to the NICs by MAC; else, per NIC, what the host can see (guest-addresses.ts).
// A guest without an agent never answers: its silence is remembered for a while, so asking
// for addresses does not wait for the agent's timeout each time.
import { z } from 'zod';
import type { Nic, NicAddresses } from '../api/contract.js';
import { agentCommand } from '../qemu/guest-agent.js';
import { hostSeenAddresses } from './guest-addresses.js';

const AGENT_TIMEOUT_MS = 1500;
/** After an agent stayed silent, it is not asked again for this long. */
const SILENT_MS = 30_000;

const AgentInterfaces = z.array(
  z.object({
    name: z.string(),
    'hardware-address': z.string().optional(),
    'ip-addresses': z
      .array(z.object({ 'ip-address-type': z.enum(['ipv4', 'ipv6']), 'ip-address': z.string(), prefix: z.number() }))
      .optional(),
  }),
);

/** fe80::/10 is on every link and reaches nothing beyond it: not an address to show. */
const linkLocal = (a: string) => /^fe[89ab][0-9a-f]:/i.test(a);

/**
 * The NICs' addresses in an agent's reply (IPv4 first), or null for a reply that is not one.
 * A NIC the agent does not list (its driver not loaded, say) gets null: the host's view then.
 */
export function parseAgentInterfaces(nics: readonly Nic[], reply: unknown): Array<NicAddresses | null> | null {
  const parsed = AgentInterfaces.safeParse(reply);
  if (!parsed.success) return null;
  return nics.map((n) => {
    const found = parsed.data.find((i) => i['hardware-address']?.toLowerCase() === n.mac.toLowerCase());
    if (!found) return null;
    const ips = (found['ip-addresses'] ?? []).filter((a) => !linkLocal(a['ip-address']));
    ips.sort((a, b) => (a['ip-address-type'] === b['ip-address-type'] ? 0 : a['ip-address-type'] === 'ipv4' ? -1 : 1));
    return {
      nic: n.id,
      addresses: ips.map((a) => a['ip-address']),
      source: 'agent',
      note: `from the guest agent: the guest's interface ${found.name}`,
    };
  });
}

export class GuestAddresses {
  /** Agent sockets whose agent stayed silent, and until when they are not asked. */
  private readonly silent = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async of(nics: readonly Nic[], agentSocket: string): Promise<NicAddresses[]> {
    const host = hostSeenAddresses(nics);
    if (!nics.length || (this.silent.get(agentSocket) ?? 0) > this.now()) return host.map(noAgent);
    let agent: Array<NicAddresses | null> | null = null;
    try {
      agent = parseAgentInterfaces(nics, await agentCommand(agentSocket, 'guest-network-get-interfaces', AGENT_TIMEOUT_MS));
    } catch {
      // no agent in the guest, or not yet started
    }
    if (!agent) {
      this.silent.set(agentSocket, this.now() + SILENT_MS);
      return host.map(noAgent);
    }
    this.silent.delete(agentSocket);
    return host.map((h, i) => agent[i] ?? { ...h, note: `${h.note} (the guest agent lists no interface with this NIC's MAC)` });
  }
}

function noAgent(a: NicAddresses): NicAddresses {
  return { ...a, note: `${a.note} (no guest agent answered)` };
}
