// How an option's text becomes an API value. Each parser names the flag in its error, so that a
// mistake is a one-line usage error (exit 2) before anything reaches the host.
import path from 'node:path';
import type { Liveness, NicInput, PortForward } from '../core/api/contract.js';
import { MiB, parseSize } from '../core/api/units.js';
import { UsageError, type Parse } from './table.js';

export const text: Parse<string> = (t) => t;

/** Paths are resolved here: the host runs elsewhere and needs them absolute. */
export const absPath: Parse<string> = (t) => path.resolve(t);

export const int: Parse<number> = (t, flag) => {
  if (!/^\s*-?\d+\s*$/.test(t)) throw new UsageError(`${flag} must be a whole number, not "${t}"`);
  return Number(t);
};

/** One of a few words; the message lists them. */
export function oneOf<const V extends string>(...words: V[]): Parse<V> {
  return (t, flag) => {
    if ((words as string[]).includes(t)) return t as V;
    const choices = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : words[0];
    throw new UsageError(`${flag} must be ${choices}, not "${t}"`);
  };
}

/** `word` (such as off or default) means null: back to no limit or the default. */
export function orNull<T>(word: string, parse: Parse<T>): Parse<T | null> {
  return (t, flag) => (t === word ? null : parse(t, flag));
}

/** Bytes; a bare number is bytes, which is never what is meant for a disk, so it needs a unit. */
export const bytes: Parse<number> = (t, flag) => {
  if (/^\s*\d+\s*$/.test(t)) throw new UsageError(`${flag} needs a unit, e.g. ${t.trim()}G`);
  return size(t, flag, 'b');
};

/** Bytes per second for I/O limits: a bare number is bytes. */
export const rate: Parse<number> = (t, flag) => size(t, flag, 'b');

/** Memory in MiB; a bare number means MiB. */
export const memoryMiB: Parse<number> = (t, flag) => {
  const n = size(t, flag, 'm');
  if (n % MiB) throw new UsageError(`${flag} must be a whole number of MiB, not ${t}`);
  return n / MiB;
};

function size(t: string, flag: string, unit: 'b' | 'm'): number {
  try {
    return parseSize(t, unit);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** Seconds from "15m", "900s", "1h", "2d" or a bare number of seconds. */
export const duration: Parse<number> = (t, flag) => {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(t.trim());
  if (!m) throw new UsageError(`${flag} must be a duration like 15m, 900s or 1h, not "${t}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
};

/** "150" or "150%": percent of one host core. */
export const percent: Parse<number> = (t, flag) => int(t.replace(/%$/, ''), flag);

/** on/off for a switch that takes a value (so that off can be set explicitly). */
export const onOff: Parse<boolean> = (t, flag) => oneOf('on', 'off')(t, flag) === 'on';

/**
 * tcp:HOSTPORT:GUESTPORT, udp:…, optionally with the host address: tcp:0.0.0.0:8080:80. A
 * forward beyond loopback (or to a host port below 1024) says so with :exposed at the end.
 */
export const forward: Parse<PortForward> = (spec, flag) => {
  const m = /^(tcp|udp):(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(:exposed)?$/.exec(spec);
  if (!m)
    throw new UsageError(
      `${flag} must look like tcp:HOSTPORT:GUESTPORT, not "${spec}" (beyond loopback: tcp:ADDR:HOSTPORT:GUESTPORT:exposed)`,
    );
  const port = (s: string) => {
    const n = Number(s);
    if (n < 1 || n > 65535) throw new UsageError(`${flag} ${spec}: port ${s} is out of range 1-65535`);
    return n;
  };
  return { proto: m[1] as 'tcp' | 'udp', hostAddr: m[2] ?? '127.0.0.1', hostPort: port(m[3]!), guestPort: port(m[4]!), exposed: !!m[5] };
};

/**
 * A shared folder for vm create: HOSTDIR[:TAG][:ro], read from the right (a folder name may hold
 * a colon; a tag may not). A relative folder is taken from the current directory.
 */
export const share: Parse<{ path: string; tag?: string; readOnly: boolean }> = (spec, flag) => {
  const parts = spec.split(':');
  let readOnly = false;
  if (parts.length > 1 && (parts.at(-1) === 'ro' || parts.at(-1) === 'rw')) readOnly = parts.pop() === 'ro';
  let tag: string | undefined;
  if (parts.length > 1 && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(parts.at(-1)!)) tag = parts.pop();
  const dir = parts.join(':');
  if (!dir) throw new UsageError(`${flag} must look like HOSTDIR[:TAG][:ro], not "${spec}"`);
  return { path: path.resolve(dir), ...(tag ? { tag } : {}), readOnly };
};

/** passt, user, bridge:BRIDGE, private:NETWORK, or none (no NIC: null). */
export const nic: Parse<NicInput | null> = (t, flag) => {
  if (t === 'none') return null;
  if (t === 'passt' || t === 'user') return { kind: t };
  const m = /^(bridge|private):(\S+)$/.exec(t);
  if (m) return m[1] === 'bridge' ? { kind: 'bridge', bridge: m[2]! } : { kind: 'private', network: m[2]! };
  throw new UsageError(`${flag} must be passt, user, bridge:BRIDGE, private:NETWORK or none, not "${t}"`);
};

/** agent, tcp:PORT, http:PORT/PATH, or off (none): null. */
export const liveness: Parse<Liveness | null> = (t, flag) => {
  if (t === 'off' || t === 'none') return null;
  if (t === 'agent') return { kind: 'agent' };
  const tcp = /^tcp:(\d+)$/.exec(t);
  if (tcp) return { kind: 'tcp', port: Number(tcp[1]) };
  const http = /^http:(\d+)(\/\S*)?$/.exec(t);
  if (http) return { kind: 'http', port: Number(http[1]), path: http[2] ?? '/' };
  throw new UsageError(`${flag} must be agent, tcp:PORT, http:PORT/PATH or off, not "${t}"`);
};
