// Join tokens: "corral1.<CA fingerprint hex>.<secret>". The joiner checks the fingerprint against
// the CA the join port shows before it sends anything; the cluster keeps only the secret's hash,
// leased so it expires, and deletes it in the transaction that accepts it (one use).
import { createHash, randomBytes } from 'node:crypto';

export interface ParsedToken {
  /** AA:BB:… as X509Certificate.fingerprint256 spells it. */
  fingerprint: string;
  secret: string;
}

export function makeToken(fingerprint: string): { token: string; hash: string } {
  const secret = randomBytes(24).toString('base64url');
  return { token: `corral1.${fingerprint.replace(/:/g, '').toLowerCase()}.${secret}`, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Throws an error naming the token when it is not one. */
export function parseToken(token: string): ParsedToken {
  const m = /^corral1\.([0-9a-f]{64})\.([A-Za-z0-9_-]{16,64})$/.exec(token.trim());
  if (!m) throw new Error('the token is not a Corral join token (expected corral1.<fingerprint>.<secret>, as cluster init prints it)');
  const fingerprint = m[1]!.toUpperCase().match(/../g)!.join(':');
  return { fingerprint, secret: m[2]! };
}
