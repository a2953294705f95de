// Trust on first use for `--connect https://…`: the first certificate a `corral serve` shows is
// remembered by its SHA-256 fingerprint (in the app's userData), and a different one later is
// refused with what changed and how to accept it on purpose. Plain Node: unit-tested as is.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type PinDecision = { ok: true; firstUse: boolean } | { ok: false; message: string };

export function fingerprintOfPem(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function load(file: string): Record<string, string> {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** Whether `fingerprint` may be trusted for `host`; remembers it when the host is new. */
export function checkPin(file: string, host: string, fingerprint: string): PinDecision {
  const key = host.toLowerCase();
  const pins = load(file);
  const known = pins[key];
  if (known === fingerprint) return { ok: true, firstUse: false };
  if (known)
    return {
      ok: false,
      message:
        `The TLS certificate of ${host} has changed since this app first connected to it.\n\n` +
        `Remembered: SHA-256 ${known}\nNow:        SHA-256 ${fingerprint}\n\n` +
        `Someone may be intercepting the connection. If the host's certificate was replaced on purpose ` +
        `(a new data dir, or --tls-cert), compare the new fingerprint with the one corral serve prints, ` +
        `then remove the entry for ${key} from ${file}.`,
    };
  pins[key] = fingerprint;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pins, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
  return { ok: true, firstUse: true };
}
