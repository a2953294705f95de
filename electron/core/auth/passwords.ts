// Password hashes: scrypt from node:crypto with a random salt; the parameters are stored
// with the hash so they can be raised later without breaking the old ones.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** 16 MiB of memory and some tens of ms per check: slow for a guesser, fine for a login. */
const PARAMS = { N: 16384, r: 8, p: 1 };
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, o: ScryptOptions, len: number): Promise<Buffer> {
  const maxmem = 256 * (o.N ?? 1) * (o.r ?? 1) + 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, len, { ...o, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS, KEY_BYTES);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const want = Buffer.from(m[5]!, 'base64');
  const N = Number(m[1]);
  if (N > 1 << 20 || want.length < 16) return false; // not ours: refuse rather than burn the CPU
  const got = await derive(password, Buffer.from(m[4]!, 'base64'), { N, r: Number(m[2]), p: Number(m[3]) }, want.length);
  return timingSafeEqual(got, want);
}

/** Checked against when the user does not exist, so that a wrong name takes as long as a wrong password. */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(12).toString('hex')));
}
