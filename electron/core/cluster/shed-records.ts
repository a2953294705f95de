// What load balancing keeps in etcd: one record per VM it moved last (or tried to), so that the
// VM's cooldown and a move under way outlive the leader that started it. Plain data, parsed
// defensively like the failover records.

export interface ShedRecord {
  vmId: string;
  vm: string;
  /** Host ids. */
  from: string;
  to: string;
  /** When the leader started the move, and when it ended (null while under way). */
  at: number;
  endedAt: number | null;
  outcome: 'moving' | 'moved' | 'failed';
  /** The balancer's reason: the imbalance before and after, the loads. */
  why: string;
  before: number;
  after: number;
  /** Each host's load (by name) when the move was chosen. */
  loads: Record<string, number>;
  error: string | null;
}

export function parseShed(text: string): ShedRecord | null {
  try {
    const r = JSON.parse(text) as ShedRecord;
    const ok =
      typeof r.vmId === 'string' &&
      typeof r.vm === 'string' &&
      typeof r.from === 'string' &&
      typeof r.to === 'string' &&
      typeof r.at === 'number' &&
      ['moving', 'moved', 'failed'].includes(r.outcome);
    return ok ? r : null;
  } catch {
    return null;
  }
}

/** When the VM's cooldown began: the end of its last move, or its start while under way. */
export const restsFrom = (r: ShedRecord) => r.endedAt ?? r.at;
