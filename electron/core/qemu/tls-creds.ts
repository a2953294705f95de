// QEMU's TLS credentials for a migration: a directory in the layout tls-creds-x509 reads
// (ca-cert.pem, server-cert.pem/server-key.pem or client-cert.pem/client-key.pem), with a
// fresh key and a certificate signed by the CA Corral was given (two standalone hosts), or with
// the host's own certificate from the cluster CA (hosts of a cluster: only the host that made
// the cluster holds the CA key). The migration stream and the NBD disk copy are never plain TCP.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A CA that signs certificates: its PEM certificate and key, as files. */
export interface CaFiles {
  cert: string;
  key: string;
}

/** The CA in a directory as ca-cert.pem and ca-key.pem, or null when it is not there. */
export function caIn(dir: string): CaFiles | null {
  const cert = path.join(dir, 'ca-cert.pem');
  const key = path.join(dir, 'ca-key.pem');
  return fs.existsSync(cert) && fs.existsSync(key) ? { cert, key } : null;
}

/**
 * A host's own certificate (for server and client use, naming the host's address) and key,
 * signed by `ca`, which the peer trusts too: a cluster host's.
 */
export interface HostCreds {
  ca: string;
  cert: string;
  key: string;
}

/** Where QEMU's credentials come from: a CA that signs fresh ones, or a host's own. */
export type CredsSource = CaFiles | HostCreds;

export type TlsEndpoint = 'server' | 'client';

/**
 * Writes a key and a certificate for `endpoint` into `dir` (which must exist and be QEMU's to
 * read: QEMU loads them at object-add, after it dropped to its own user). The server's
 * certificate names `names` (the address the peer dials: QEMU checks it against the URI's host);
 * a host's own certificate already names its address.
 */
export async function writeCreds(
  dir: string,
  source: CredsSource,
  endpoint: TlsEndpoint,
  names: string[],
  commonName: string,
): Promise<void> {
  if ('ca' in source) return copyHostCreds(dir, source, endpoint);
  const ca = source;
  const key = path.join(dir, `${endpoint}-key.pem`);
  const csr = path.join(dir, `${endpoint}.csr`);
  const cert = path.join(dir, `${endpoint}-cert.pem`);
  const ext = path.join(dir, `${endpoint}.ext`);
  const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const usage = endpoint === 'server' ? 'serverAuth' : 'clientAuth';
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${usage}`,
      ...(san ? [`subjectAltName=${san}`] : []),
      '',
    ].join('\n'),
  );
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${commonName}`, '-out', csr]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-CAserial',
    path.join(dir, 'ca.srl'),
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  fs.copyFileSync(ca.cert, path.join(dir, 'ca-cert.pem'));
  for (const f of [csr, ext, path.join(dir, 'ca.srl')]) fs.rmSync(f, { force: true });
  // the dir is QEMU's alone (0700, its user); the files inside need only be readable there
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
}

function copyHostCreds(dir: string, h: HostCreds, endpoint: TlsEndpoint): void {
  fs.copyFileSync(h.ca, path.join(dir, 'ca-cert.pem'));
  fs.copyFileSync(h.cert, path.join(dir, `${endpoint}-cert.pem`));
  fs.copyFileSync(h.key, path.join(dir, `${endpoint}-key.pem`));
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
}
