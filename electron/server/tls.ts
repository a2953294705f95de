// TLS for `corral serve`: a certificate the user provides, or a self-signed one made at first
// start in the data dir. node:crypto makes keys but cannot write an X.509 certificate, so the
// certificate is made by the `openssl` command (Debian's openssl package, security-maintained,
// present on nearly every host) rather than an npm library carrying its own ASN.1 and RSA code.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 of the certificate, as AA:BB:… (what browsers show). */
  fingerprint: string;
  certFile: string;
  /** Made here (so clients must pin or accept its fingerprint). */
  selfSigned: boolean;
}

export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** The user's certificate and key; a clear error naming the flag when either cannot be used. */
export function loadTls(certFile: string, keyFile: string): TlsMaterial {
  const read = (file: string, flag: string) => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  let fingerprint: string;
  try {
    fingerprint = fingerprintOf(cert);
  } catch {
    throw new Error(`--tls-cert: ${certFile} is not a PEM certificate`);
  }
  return { cert, key, fingerprint, certFile, selfSigned: false };
}

/** The data dir's self-signed certificate, made on first use for these names and addresses. */
export function selfSignedTls(dir: string, names: string[]): TlsMaterial {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) makeCertificate(certFile, keyFile, names);
  fs.chmodSync(keyFile, 0o600);
  return { ...loadTls(certFile, keyFile), selfSigned: true };
}

function makeCertificate(certFile: string, keyFile: string, names: string[]): void {
  const san = [...new Set(names)].map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const tmpKey = `${keyFile}.${process.pid}.tmp`;
  const tmpCert = `${certFile}.${process.pid}.tmp`;
  const oldMask = process.umask(0o077); // the key is 0600 from its first byte
  try {
    // prettier-ignore
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCert, '-days', '3650', '-subj', '/O=Corral/CN=corral serve',
      '-addext', `subjectAltName=${san}`, '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'extendedKeyUsage=serverAuth',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const why = e.code === 'ENOENT' ? 'the openssl command is missing (install the openssl package)' : String(e.stderr ?? e.message).trim();
    throw new Error(`cannot make a TLS certificate: ${why}; or give one with --tls-cert/--tls-key, or --no-tls`);
  } finally {
    process.umask(oldMask);
  }
  fs.renameSync(tmpKey, keyFile);
  fs.renameSync(tmpCert, certFile);
}
