// The cluster's certificate authority and each host's certificate, made by the `openssl` command
// (as server/tls.ts does: node:crypto cannot write X.509). Private keys are 0600 from their first
// byte and never leave their host: a joining host sends a CSR and gets back its certificate.
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Where a host keeps its cluster TLS material (all PEM). QEMU's tls-creds-x509 wants this layout in a dir of its own. */
export interface CertPaths {
  dir: string;
  ca: string;
  /** Only on the host that made the cluster: it signs the others' CSRs. */
  caKey: string;
  cert: string;
  key: string;
}

export function certPaths(clusterDir: string): CertPaths {
  return {
    dir: clusterDir,
    ca: path.join(clusterDir, 'ca.pem'),
    caKey: path.join(clusterDir, 'ca-key.pem'),
    cert: path.join(clusterDir, 'host.pem'),
    key: path.join(clusterDir, 'host-key.pem'),
  };
}

function openssl(args: string[], input?: string): string {
  try {
    return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? 'the openssl command is missing (install the openssl package)' : String(e.stderr ?? e.message).trim();
    throw new Error(`openssl ${args[0]}: ${why}`);
  }
}

/** Runs fn with a umask that makes every new file 0600 (keys are private from their first byte). */
function privately<T>(fn: () => T): T {
  const old = process.umask(0o077);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/** SHA-256 of a PEM certificate as AA:BB:…: the cluster's identity, carried in join tokens. */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Makes the cluster CA (key and self-signed certificate) in the paths' dir. */
export function makeCa(p: CertPaths, clusterName: string): void {
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  privately(() =>
    // prettier-ignore
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', p.caKey, '-out', p.ca, '-days', '3650', '-subj', `/O=Corral/CN=Corral cluster ${clusterName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]),
  );
}

/** A new private key (written 0600 at p.key) and a CSR for it naming the host id; returns the CSR. */
export function makeKeyAndCsr(p: CertPaths, hostId: string): string {
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  return privately(() =>
    // prettier-ignore
    openssl([
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', p.key, '-subj', `/O=Corral/CN=${hostId}`,
    ]),
  );
}

/** The CN of a CSR whose signature checks out; throws on anything else. */
export function csrHostId(csr: string): string {
  const out = openssl(['req', '-noout', '-verify', '-subject', '-nameopt', 'RFC2253'], csr);
  const cn = /CN=([^,\n]+)/.exec(out)?.[1];
  if (!cn) throw new Error('the CSR names no host (CN)');
  return cn;
}

/** Signs a host's CSR with the CA: a certificate for server and client use at `address`. */
export function signCsr(p: CertPaths, csr: string, address: string): string {
  const hostId = csrHostId(csr);
  if (!/^h[0-9a-f]{16}$/.test(hostId)) throw new Error(`the CSR names "${hostId}", not a host id`);
  const san = [`IP:127.0.0.1`, 'DNS:localhost', net.isIP(address) ? `IP:${address}` : `DNS:${address}`].join(',');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-csr-'));
  try {
    const ext = path.join(tmp, 'ext.cnf');
    fs.writeFileSync(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=${san}`,
      ].join('\n') + '\n',
    );
    const csrFile = path.join(tmp, 'host.csr');
    fs.writeFileSync(csrFile, csr);
    // prettier-ignore
    return openssl([
      'x509', '-req', '-in', csrFile, '-CA', p.ca, '-CAkey', p.caKey, '-days', '825',
      '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-extfile', ext,
    ]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Issues this host's own certificate (the host that holds the CA key). */
export function issueOwnCert(p: CertPaths, hostId: string, address: string): void {
  const csr = makeKeyAndCsr(p, hostId);
  fs.writeFileSync(p.cert, signCsr(p, csr, address));
}

/** The host id a peer certificate names (its CN). */
export function hostIdOf(cert: X509Certificate | { subject?: { CN?: string | string[] } }): string | null {
  if (cert instanceof X509Certificate) return /CN=([^\n,]+)/.exec(cert.subject)?.[1] ?? null;
  const cn = cert.subject?.CN;
  return (Array.isArray(cn) ? cn[0] : cn) ?? null;
}
