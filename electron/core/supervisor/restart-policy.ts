// The restart policy of one VM: whether and when to restart it after it ends, and when to give up
// (crash-loop). Pure: the caller supplies the clock and randomness, owns the timers, and persists
// PolicyState (plain JSON) so that a pending restart survives a restart of the host.
//
// How the caller drives it:
//   VM ended               -> onEnd; on 'restart', persist and set a timer for `at`
//   timer went off         -> onTimer; launch the VM only if it says start
//   VM reached running     -> onRunning
//   user start             -> onUserStart (clears crash-loop and counters, cancels a pending restart)
//   user stop/kill         -> onUserStop (cancels a pending restart; also use it when the policy is
//                             changed to `never` or the VM is deleted during a backoff)
//   host started           -> onHostStart; on 'restart', set a timer for `at` as above
import type { ExitReason, RestartPolicy } from '../api/contract.js';
import { isCleanEnd } from './state.js';

export interface PolicyConfig {
  policy: RestartPolicy;
  /** Crash-loop on the maxCrashes-th crash inside windowMs: 5 in 15 min -> the 5th is not restarted. */
  maxCrashes: number;
  windowMs: number;
}

export const DEFAULT_POLICY: Omit<PolicyConfig, 'policy'> = { maxCrashes: 5, windowMs: 15 * 60_000 };

/** A run at least this long resets the backoff: the VM was healthy, so its next end starts afresh. */
export const STABLE_MS = 10 * 60_000;
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 60_000;
/** Delays vary by ±10% so that VMs which died together do not restart in lockstep. */
export const JITTER = 0.1;

/** Persisted per VM. Plain JSON: numbers, booleans, nulls and an array. */
export interface PolicyState {
  /** Times of the crashes (non-clean ends) inside the window, oldest first. */
  crashTimes: readonly number[];
  /** Automatic restarts scheduled since the last user start or stable run (drives the backoff). */
  attempt: number;
  /** When the current run reached running; null while not running. */
  runningSince: number | null;
  /** When a pending (backoff) restart is due; null if none is pending. */
  restartAt: number | null;
  /** Gave up restarting: only a user start clears it. */
  crashLoop: boolean;
}

export const INITIAL_STATE: Readonly<PolicyState> = Object.freeze({
  crashTimes: Object.freeze([]),
  attempt: 0,
  runningSince: null,
  restartAt: null,
  crashLoop: false,
});

export type Decision =
  | { action: 'none'; why: string }
  | { action: 'restart'; at: number; delayMs: number; attempt: number }
  /** Just entered crash-loop (reported once; later calls answer 'none'). */
  | { action: 'crash-loop'; crashes: number; windowMs: number };

export interface Step {
  state: PolicyState;
  decision: Decision;
}

/** Ends the user or the host asked for are never undone; a guest's own poweroff only under `always`. */
export function wantsRestart(policy: RestartPolicy, reason: ExitReason): boolean {
  // a migrated guest runs on its new host: restarting it here would make two copies
  if (policy === 'never' || reason === 'user-stop' || reason === 'user-kill' || reason === 'host-shutdown' || reason === 'migrated')
    return false;
  return policy === 'always' || !isCleanEnd(reason);
}

/**
 * Delay before the attempt-th consecutive automatic restart (1-based): 0 for the first, then
 * 1, 2, 4, ... s, the nominal delay capped at 60 s, then ±10% jitter (so at most 66 s).
 * `random` returns [0, 1); 0.5 gives the nominal delay.
 */
export function backoffMs(attempt: number, random: () => number): number {
  if (attempt <= 1) return 0;
  const nominal = Math.min(BACKOFF_BASE_MS * 2 ** (attempt - 2), BACKOFF_CAP_MS);
  return Math.round(nominal * (1 + JITTER * (2 * random() - 1)));
}

export function onEnd(s: PolicyState, c: PolicyConfig, reason: ExitReason, now: number, random: () => number): Step {
  // Only crashes count toward the limit; a crash exactly windowMs ago has left the window.
  const crash = !isCleanEnd(reason);
  const recent = s.crashTimes.filter((t) => t > now - c.windowMs);
  const ended: PolicyState = { ...s, crashTimes: recent, runningSince: null, restartAt: null };
  const none = (why: string): Step => ({ state: ended, decision: { action: 'none', why } });

  if (s.crashLoop) return none('in crash-loop until a user start');
  if (c.policy === 'never') return none('policy never');
  if (!wantsRestart(c.policy, reason)) return none(reason === 'guest-poweroff' ? 'guest-poweroff under on-failure' : 'ended on request');

  const crashTimes = crash ? [...recent, now] : recent;
  if (crash && crashTimes.length >= c.maxCrashes) {
    return {
      state: { ...ended, crashTimes, crashLoop: true },
      decision: { action: 'crash-loop', crashes: crashTimes.length, windowMs: c.windowMs },
    };
  }
  // A guest-poweroff under `always` is not a crash but still backs off, so a guest that powers
  // off in a tight loop is held to one restart a minute.
  const stable = s.runningSince !== null && now - s.runningSince >= STABLE_MS;
  const attempt = (stable ? 0 : s.attempt) + 1;
  const delayMs = backoffMs(attempt, random);
  return {
    state: { ...ended, crashTimes, attempt, restartAt: now + delayMs },
    decision: { action: 'restart', at: now + delayMs, delayMs, attempt },
  };
}

/** The VM reached running. Idempotent, so a resume after a pause keeps the run's start. */
export function onRunning(s: PolicyState, now: number): PolicyState {
  return { ...s, runningSince: s.runningSince ?? now, restartAt: null };
}

/** The caller's backoff timer went off: start the VM only if the restart is still pending and due. */
export function onTimer(s: PolicyState, now: number): { state: PolicyState; start: boolean } {
  if (s.crashLoop || s.restartAt === null || s.restartAt > now) return { state: s, start: false };
  return { state: { ...s, restartAt: null }, start: true };
}

/** A start by the user is a fresh start: it clears crash-loop, the counters and any pending restart. */
export function onUserStart(): PolicyState {
  return { ...INITIAL_STATE, crashTimes: [] };
}

/** The user's stop or kill wins over a pending restart. Counters stay until the next user start. */
export function onUserStop(s: PolicyState): PolicyState {
  return { ...s, restartAt: null };
}

/** After a restart of the host: a restart that fell due while it was down happens now, else on time. */
export function onHostStart(s: PolicyState, now: number): Decision {
  if (s.crashLoop) return { action: 'none', why: 'in crash-loop until a user start' };
  if (s.restartAt === null) return { action: 'none', why: 'no restart pending' };
  const delayMs = Math.max(0, s.restartAt - now);
  return { action: 'restart', at: now + delayMs, delayMs, attempt: s.attempt };
}
