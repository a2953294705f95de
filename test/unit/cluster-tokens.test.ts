// Join tokens carry the CA fingerprint the joiner checks before it sends anything.
import { describe, expect, it } from 'vitest';
import { hashSecret, makeToken, parseToken } from '../../electron/core/cluster/tokens';

const FP = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase()).join(':');

describe('join tokens', () => {
  it('round-trip the fingerprint; the cluster keeps only the hash of the secret', () => {
    const { token, hash } = makeToken(FP);
    const t = parseToken(token);
    expect(t.fingerprint).toBe(FP);
    expect(hashSecret(t.secret)).toBe(hash);
    expect(token).not.toContain(hash);
    expect(makeToken(FP).token).not.toBe(token);
  });

  it('refuse what is not a token, saying what one looks like', () => {
    for (const bad of ['', 'corral1.abc.def', `corral2.${'ab'.repeat(32)}.${'x'.repeat(32)}`, `corral1.${'ab'.repeat(32)}.short`])
      expect(() => parseToken(bad)).toThrow(/not a Corral join token \(expected corral1\.<fingerprint>\.<secret>/);
  });
});
