// An etcd the user already runs (`corral serve --etcd URL…`): the host is one of its clients and
// runs no member of its own. Its certificates are the user's (files named at serve, read at each
// start), not the cluster CA's: that CA still secures the hosts' own peer API.
import fs from 'node:fs';
import { Etcd3 } from 'etcd3';
import { z } from 'zod';
import { etcdCallOptions, etcdFaultHandling } from './etcd-tuning.js';

export const ExternalEtcd = z.object({
  endpoints: z.array(z.string().url('must be an etcd client URL like https://10.0.0.5:2379')).min(1),
  /** PEM files: the CA that signed etcd's server certificate, and this host's client certificate and key. */
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
});
export type ExternalEtcd = z.infer<typeof ExternalEtcd>;

/** Checks what `corral serve --etcd` was given, before anything starts. */
export function checkExternalEtcd(e: ExternalEtcd): ExternalEtcd {
  const parsed = ExternalEtcd.parse(e);
  if (Boolean(parsed.cert) !== Boolean(parsed.key)) throw new Error('--etcd-cert and --etcd-key go together');
  const https = parsed.endpoints.filter((u) => u.startsWith('https:'));
  if (https.length && https.length !== parsed.endpoints.length)
    throw new Error('--etcd: give every endpoint with the same scheme (all https or all http)');
  if (parsed.cert && !https.length) throw new Error('--etcd-cert needs https:// endpoints');
  if (https.length && !parsed.ca) throw new Error("https:// endpoints need --etcd-ca (the CA of etcd's server certificate)");
  for (const f of [parsed.ca, parsed.cert, parsed.key]) if (f) fs.accessSync(f, fs.constants.R_OK);
  return parsed;
}

/** A client of the user's etcd, with the user's credentials (none over plain http). */
export function externalClient(e: ExternalEtcd): Etcd3 {
  const tls = e.endpoints[0]!.startsWith('https:');
  const read = (f: string | undefined) => (f ? fs.readFileSync(f) : undefined);
  return new Etcd3({
    hosts: e.endpoints,
    ...(tls
      ? {
          credentials: {
            rootCertificate: read(e.ca)!,
            certChain: read(e.cert),
            privateKey: read(e.key),
          },
        }
      : {}),
    dialTimeout: 5000,
    defaultCallOptions: etcdCallOptions,
    faultHandling: etcdFaultHandling(e.endpoints.length),
  });
}
