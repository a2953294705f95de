// One-shot tickets for console WebSockets: issued to an authenticated API session, good for
// one connection to one VM within 30 s. A leaked URL is useless after its first use.
import { randomBytes, timingSafeEqual } from 'node:crypto';

const TTL_MS = 30_000;

export class TicketBook {
  private readonly tickets = new Map<string, { vmId: string; expires: number }>();

  issue(vmId: string, now = Date.now()): string {
    this.prune(now);
    const ticket = randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { vmId, expires: now + TTL_MS });
    return ticket;
  }

  /** True once for a valid, unexpired ticket of this VM; the ticket is spent either way. */
  redeem(ticket: string | null, vmId: string | null, now = Date.now()): boolean {
    if (!ticket || !vmId) return false;
    const t = this.tickets.get(ticket);
    if (!t) return false;
    this.tickets.delete(ticket);
    const a = Buffer.from(t.vmId);
    const b = Buffer.from(vmId);
    return t.expires > now && a.length === b.length && timingSafeEqual(a, b);
  }

  private prune(now: number): void {
    for (const [k, t] of this.tickets) if (t.expires <= now) this.tickets.delete(k);
  }
}
