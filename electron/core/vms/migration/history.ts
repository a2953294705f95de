// A VM's history moves with it. The source sends when the VM was made, its restarts and last
// exit, its uptime, the end of its journal and a day of statistics with the prepare call; the
// target writes them under the VM before anything of its own, each event naming the host it
// happened on. Each host's SQLite keeps its own copy; the host-wide log shows only what
// happened on that host.
import { MOVED_EVENTS_MAX, MOVED_STATS_MAX, type MovedHistory } from '../../api/contract.js';
import type { EventRepo } from '../../store/event-repo.js';
import type { StatsRepo } from '../../store/stats-repo.js';
import type { VmRecord } from '../../store/vm-repo.js';

/** Room left in a peer call for the journal: crash reports are dropped, oldest first, above it. */
const EVENTS_BYTES_MAX = 1 << 20;

export interface HistoryStores {
  events: EventRepo;
  stats: StatsRepo;
}

/** The source's side: what travels with `rec`, told as having happened on `here`. */
export function historyOf(s: HistoryStores, rec: VmRecord, here: string, now: number): MovedHistory {
  const events = s.events
    .list(MOVED_EVENTS_MAX, rec.id)
    .reverse()
    .map(({ id: _id, vmId: _vmId, vmName: _vmName, host, ...e }) => ({ ...e, host: host ?? here }));
  let bytes = JSON.stringify(events).length;
  for (const e of events) {
    if (bytes <= EVENTS_BYTES_MAX) break;
    if (!e.report) continue;
    bytes -= JSON.stringify(e.report).length;
    e.report = null;
  }
  while (bytes > EVENTS_BYTES_MAX && events.length) bytes -= JSON.stringify(events.shift()).length;
  return {
    createdAt: rec.createdAt,
    startedAt: rec.startedAt,
    restarts: rec.restarts,
    lastExit: rec.lastExit,
    events,
    stats: s.stats
      .day(rec.id, now)
      .slice(-MOVED_STATS_MAX)
      .map(({ vmId: _vmId, ...row }) => row),
  };
}

/** What adopt wrote, for undo. */
export interface Adopted {
  events: { first: number; last: number } | null;
}

/**
 * The target's side: writes the history under the VM. A VM coming back finds its events from its
 * earlier stay here where they were: those are not written twice (known by time, kind and text,
 * not by host name, which two hosts may share). The day of statistics that came with it
 * replaces what this host kept of it, which it includes.
 */
export function adoptHistory(s: HistoryStores, rec: Pick<VmRecord, 'id' | 'name'>, h: MovedHistory, now: number): Adopted {
  const key = (e: { at: number; kind: string; message: string }) => `${e.at}\n${e.kind}\n${e.message}`;
  const here = new Set(s.events.list(2 * MOVED_EVENTS_MAX, rec.id).map(key));
  const ids = s.events.addAll(h.events.filter((e) => !here.has(key(e))).map((e) => ({ ...e, vmId: rec.id, vmName: rec.name })));
  s.stats.forget(rec.id);
  if (h.stats.length)
    s.stats.add(
      h.stats.map((row) => ({ ...row, vmId: rec.id })),
      now,
    );
  return { events: ids.length ? { first: ids[0]!, last: ids.at(-1)! } : null };
}

/** Removes what adopt wrote: the VM did not arrive after all. */
export function forgetAdopted(s: HistoryStores, vmId: string, a: Adopted): void {
  if (a.events) s.events.removeRange(vmId, a.events.first, a.events.last);
  s.stats.forget(vmId);
}
