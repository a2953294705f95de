// The restart-policy engine, driven by scenarios in the style of Proxmox's HA manager tests: each
// file in policy-scenarios/ lists timed events and, beside each, the log line it must produce.
//
// Scenario file format (# starts a comment):
//   config <never|on-failure|always> [maxCrashes=N] [window=<time>]   defaults 5 and 15m
//   random <number in [0,1)>                                            default 0.5 (no jitter)
//   <time> <event> [expected outcome]
// <time> is absolute from the scenario's start (1m30s, 2s500ms, 0s) or, with +, after the previous
// event. Events: start (user) | running | end:<reason> | user-stop | user-kill | host-restart | tick
// (the caller's backoff timer goes off). Each event logs "t=+<time> <event>[: <outcome>]".
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitReason, RestartPolicy } from '../../electron/core/api/contract';
import {
  BACKOFF_CAP_MS,
  DEFAULT_POLICY,
  INITIAL_STATE,
  JITTER,
  backoffMs,
  onEnd,
  onHostStart,
  onRunning,
  onTimer,
  onUserStart,
  onUserStop,
  wantsRestart,
  type Decision,
  type PolicyConfig,
  type PolicyState,
} from '../../electron/core/supervisor/restart-policy';
import { isCleanEnd } from '../../electron/core/supervisor/state';
import { formatTime as fmt, parseTime } from '../support/scenario-time';

const DIR = path.join(__dirname, 'policy-scenarios');

// ---- scenarios --------------------------------------------------------------------------------

interface Scenario {
  config: PolicyConfig;
  random: number;
  events: { at: number; event: string }[];
  expected: string[];
}

function parseScenario(text: string): Scenario {
  const sc: Scenario = { config: { policy: 'never', ...DEFAULT_POLICY }, random: 0.5, events: [], expected: [] };
  let last = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [head, second, ...rest] = line.split(/\s+/);
    const where = `line ${i + 1}`;
    if (head === 'config') {
      sc.config.policy = RestartPolicy.parse(second);
      for (const opt of rest) {
        const [k, v] = opt.split('=');
        if (k === 'maxCrashes') sc.config.maxCrashes = Number(v);
        else if (k === 'window') sc.config.windowMs = parseTime(v);
        else throw new Error(`${where}: unknown option ${opt}`);
      }
    } else if (head === 'random') {
      sc.random = Number(second);
    } else {
      const at = head.startsWith('+') ? last + parseTime(head.slice(1)) : parseTime(head);
      if (at < last) throw new Error(`${where}: time goes backwards`);
      if (second === undefined) throw new Error(`${where}: no event`);
      last = at;
      sc.events.push({ at, event: second });
      sc.expected.push(logLine(at, second, rest.join(' ')));
    }
  }
  return sc;
}

const logLine = (at: number, event: string, outcome: string) => `t=+${fmt(at)} ${event}${outcome ? `: ${outcome}` : ''}`;

function describeDecision(d: Decision, now: number): string {
  switch (d.action) {
    case 'none':
      return `no restart (${d.why})`;
    case 'crash-loop':
      return `crash-loop (${d.crashes} crashes in ${fmt(d.windowMs)})`;
    case 'restart':
      return `restart in ${d.delayMs}ms (attempt ${d.attempt})` + (d.at !== now + d.delayMs ? ' (at mismatch)' : '');
  }
}

/** Plays a scenario against the engine, as the supervisor would, and returns the log. */
function play(sc: Scenario): string[] {
  let s: PolicyState = INITIAL_STATE;
  const log: string[] = [];
  for (const { at: now, event } of sc.events) {
    let outcome = '';
    if (event === 'start') {
      outcome = s.crashLoop ? 'crash-loop cleared' : s.restartAt !== null ? 'pending restart cancelled' : '';
      s = onUserStart();
    } else if (event === 'running') {
      s = onRunning(s, now);
    } else if (event.startsWith('end:')) {
      const step = onEnd(s, sc.config, ExitReason.parse(event.slice(4)), now, () => sc.random);
      s = step.state;
      outcome = describeDecision(step.decision, now);
    } else if (event === 'user-stop' || event === 'user-kill') {
      outcome = s.restartAt !== null ? 'pending restart cancelled' : '';
      s = onUserStop(s);
    } else if (event === 'host-restart') {
      const d = onHostStart(s, now);
      if (d.action === 'none') outcome = d.why;
      else if (d.action === 'restart' && d.delayMs === 0) outcome = `restart now (attempt ${d.attempt})`;
      else if (d.action === 'restart') outcome = `restart in ${d.delayMs}ms at t=+${fmt(d.at)} (attempt ${d.attempt})`;
      else outcome = `unexpected ${d.action}`;
    } else if (event === 'tick') {
      const t = onTimer(s, now);
      outcome = t.start
        ? `restarting (attempt ${s.attempt})`
        : s.restartAt !== null
          ? `restart due at t=+${fmt(s.restartAt)}`
          : 'nothing pending';
      s = t.state;
    } else {
      throw new Error(`unknown event ${event}`);
    }
    // The caller persists the state as JSON after every step, so play on from the parsed copy.
    const saved = JSON.parse(JSON.stringify(s)) as PolicyState;
    expect(saved).toStrictEqual({ ...s, crashTimes: [...s.crashTimes] });
    s = saved;
    log.push(logLine(now, event, outcome));
  }
  return log;
}

describe('restart policy scenarios', () => {
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.scenario'))
    .sort();

  it('finds the scenarios', () => expect(files.length).toBeGreaterThanOrEqual(14));

  it.each(files)('%s', (file) => {
    const sc = parseScenario(readFileSync(path.join(DIR, file), 'utf8'));
    expect(play(sc)).toEqual(sc.expected);
  });
});

// ---- properties -------------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('backoff', () => {
  it('is immediate for the first restart, without consulting randomness', () => {
    expect(
      backoffMs(1, () => {
        throw new Error('jitter on the first restart');
      }),
    ).toBe(0);
  });

  it('stays within ±10% of the nominal delay, and actually spreads', () => {
    const random = seeded(42);
    const samples = [...Array.from({ length: 2000 }, random), 0, 1 - Number.EPSILON];
    for (let attempt = 2; attempt <= 20; attempt++) {
      const nominal = Math.min(1000 * 2 ** (attempt - 2), BACKOFF_CAP_MS);
      const delays = samples.map((r) => backoffMs(attempt, () => r));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - JITTER)));
      expect(Math.max(...delays)).toBeLessThanOrEqual(Math.ceil(nominal * (1 + JITTER)));
      // most of the ±10% band is used, so VMs that died together spread out
      expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(nominal * JITTER * 1.8);
    }
  });

  it('applies the same bounds to the delays onEnd schedules', () => {
    const random = seeded(7);
    const c: PolicyConfig = { policy: 'always', maxCrashes: 5, windowMs: 15 * 60_000 };
    let s: PolicyState = onUserStart();
    for (let i = 1, now = 0; i <= 50; i++) {
      const { state, decision } = onEnd(onRunning(s, now), c, 'guest-poweroff', now + 1000, random);
      if (decision.action !== 'restart') throw new Error(`expected a restart, got ${decision.action}`);
      const nominal = i === 1 ? 0 : Math.min(1000 * 2 ** (i - 2), BACKOFF_CAP_MS);
      expect(decision.delayMs).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - JITTER)));
      expect(decision.delayMs).toBeLessThanOrEqual(Math.ceil(nominal * (1 + JITTER)));
      s = state;
      now = decision.at;
    }
  });
});

describe('policy table', () => {
  it.each(RestartPolicy.options)('%s', (policy) => {
    for (const reason of ExitReason.options) {
      // a migrated guest runs on another host: never restarted here
      const requested = reason === 'user-stop' || reason === 'user-kill' || reason === 'host-shutdown' || reason === 'migrated';
      const expected = policy === 'always' ? !requested : policy === 'on-failure' ? !isCleanEnd(reason) : false;
      expect(wantsRestart(policy, reason), reason).toBe(expected);
    }
  });
});

describe('persisted state', () => {
  it('round-trips through JSON and plays on identically', () => {
    const c: PolicyConfig = { policy: 'on-failure', ...DEFAULT_POLICY };
    const half = () => 0.5;
    let s = onRunning(onUserStart(), 0);
    for (const t of [60_000, 120_000, 180_000]) s = onRunning(onEnd(s, c, 'guest-panic', t, half).state, t + 5000);
    s = onEnd(s, c, 'qemu-hung', 240_000, half).state;
    expect(s).toMatchObject({
      crashTimes: [60_000, 120_000, 180_000, 240_000],
      attempt: 4,
      runningSince: null,
      restartAt: 244_000,
      crashLoop: false,
    });

    const text = JSON.stringify(s);
    const back = JSON.parse(text) as PolicyState;
    expect(back).toStrictEqual({ ...s, crashTimes: [...s.crashTimes] });
    expect(onHostStart(back, 242_000)).toEqual(onHostStart(s, 242_000));
    expect(onEnd(onRunning(back, 245_000), c, 'guest-panic', 250_000, half)).toEqual(
      onEnd(onRunning(s, 245_000), c, 'guest-panic', 250_000, half),
    );
  });

  it('never mutates its input', () => {
    const s = Object.freeze({ ...INITIAL_STATE, crashTimes: Object.freeze([1, 2]), attempt: 2, restartAt: 5, runningSince: 3 });
    const c: PolicyConfig = { policy: 'always', ...DEFAULT_POLICY };
    expect(() => {
      onEnd(s, c, 'guest-panic', 10, Math.random);
      onRunning(s, 10);
      onTimer(s, 10);
      onUserStop(s);
      onHostStart(s, 10);
    }).not.toThrow();
    expect(s).toEqual({ crashTimes: [1, 2], attempt: 2, restartAt: 5, runningSince: 3, crashLoop: false });
  });
});
