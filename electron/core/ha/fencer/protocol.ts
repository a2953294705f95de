// What the host tells its fencer, one JSON object per line on the fencer's unix socket, and the
// files the fencer leaves in its dir. Kept free of Node-only modules beyond path: both sides import it.
import path from 'node:path';

/** A QEMU to kill at the deadline: pid and start time (field 22 of /proc/PID/stat), so a reused pid is never hit. */
export interface Guard {
  vm: string;
  pid: number;
  startTime: string;
}

export type FencerMessage =
  /** A later deadline (CLOCK_MONOTONIC ms) and the HA QEMUs it guards. */
  | { op: 'arm'; deadlineMs: number; guards: Guard[] }
  /** The host left the cluster cleanly (lease revoked): nothing to fence any more. */
  | { op: 'disarm' }
  /** The host is back with a fresh lease and read the record: remove it. */
  | { op: 'clear-fence' };

/** What the fencer did at a deadline that passed; the host reads it and refuses HA starts while it exists. */
export interface FenceRecord {
  /** Wall-clock time of the fence (ms since the epoch), for people. */
  at: number;
  deadlineMs: number;
  /** CLOCK_MONOTONIC ms when the fencer acted (≥ deadlineMs). */
  firedMs: number;
  /** What it killed; `at` on a kill of a later fence than the record's first (see mergeFence). */
  killed: Array<Guard & { at?: number }>;
  /** Guards whose pid was gone or reused: nothing was killed for them. */
  gone: Guard[];
}

export interface FencerFiles {
  dir: string;
  socket: string;
  pidFile: string;
  record: string;
  log: string;
}

export function fencerFiles(dir: string): FencerFiles {
  return {
    dir,
    socket: path.join(dir, 'fencer.sock'),
    pidFile: path.join(dir, 'fencer.pid'),
    record: path.join(dir, 'fenced.json'),
    log: path.join(dir, 'fencer.log'),
  };
}

/**
 * The record after another fence while the last one is still unread (the host has not cleared
 * it): the first fence's time stays and nothing it killed is forgotten, so the host, once back,
 * reports each guest's real fence time. A fence that killed nothing adds nothing.
 */
export function mergeFence(prev: FenceRecord | null, next: FenceRecord): FenceRecord {
  if (!prev) return next;
  return {
    ...prev,
    killed: [...prev.killed, ...next.killed.map((g) => ({ ...g, at: next.at }))],
    gone: [...prev.gone, ...next.gone],
  };
}

function isGuard(g: unknown): g is Guard {
  const o = g as Guard;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.vm === 'string' &&
    Number.isInteger(o.pid) &&
    o.pid > 1 &&
    typeof o.startTime === 'string' &&
    /^\d+$/.test(o.startTime)
  );
}

/** Parses one line; null for anything malformed (the fencer logs and ignores it). */
export function parseMessage(line: string): FencerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  const o = m as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) return null;
  if (o.op === 'disarm' || o.op === 'clear-fence') return { op: o.op };
  if (
    o.op === 'arm' &&
    typeof o.deadlineMs === 'number' &&
    Number.isFinite(o.deadlineMs) &&
    Array.isArray(o.guards) &&
    o.guards.every(isGuard)
  )
    return { op: 'arm', deadlineMs: o.deadlineMs, guards: o.guards };
  return null;
}
