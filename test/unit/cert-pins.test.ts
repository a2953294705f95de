import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPin, fingerprintOfPem } from '../../electron/main/cert-pins';
import { fingerprintOf, selfSignedTls } from '../../electron/server/tls';
import { tempDir } from '../helpers';

describe('trust on first use of a corral serve certificate', () => {
  const fpA = 'AA:'.repeat(31) + 'AA';
  const fpB = 'BB:'.repeat(31) + 'BB';

  it('remembers the first fingerprint, accepts it again, and refuses a changed one with both', () => {
    const file = path.join(tempDir(), 'userData', 'certificate-pins.json');
    expect(checkPin(file, 'box.lan:7420', fpA)).toEqual({ ok: true, firstUse: true });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(checkPin(file, 'BOX.lan:7420', fpA)).toEqual({ ok: true, firstUse: false });
    const changed = checkPin(file, 'box.lan:7420', fpB);
    expect(changed.ok).toBe(false);
    expect(!changed.ok && changed.message).toMatch(
      /has changed[\s\S]*Remembered: SHA-256 AA:[\s\S]*Now: +SHA-256 BB:[\s\S]*remove the entry for box\.lan:7420/,
    );
    // a refusal never replaces the pin
    expect(checkPin(file, 'box.lan:7420', fpA)).toEqual({ ok: true, firstUse: false });
    // each host has its own
    expect(checkPin(file, 'other.lan:7420', fpB)).toEqual({ ok: true, firstUse: true });
  });

  it('starts over from a pin file that is not ours rather than failing', () => {
    const file = path.join(tempDir(), 'pins.json');
    fs.writeFileSync(file, '[not json');
    expect(checkPin(file, 'h:1', fpA)).toEqual({ ok: true, firstUse: true });
  });

  it("computes the fingerprint as serve prints it, from the certificate's PEM", () => {
    const dir = tempDir();
    const tls = selfSignedTls(dir, ['localhost', '127.0.0.1']);
    expect(fingerprintOfPem(tls.cert)).toBe(tls.fingerprint);
    expect(tls.fingerprint).toBe(fingerprintOf(fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8')));
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(dir, 'cert.pem')]).toString();
    expect(text).toMatch(/DNS:localhost/);
    expect(text).toMatch(/IP Address:127\.0\.0\.1/);
  });
});
