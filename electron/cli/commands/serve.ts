// `corral serve`: the host without the desktop app. It owns the data dir, so it needs no host itself.
import { command, flag, option, UsageError } from '../table.js';
import { text } from '../values.js';

export const serveCommands = [
  command({
    words: 'serve',
    args: [],
    summary: 'Run the host without the desktop app: the VMs, the web UI and the control socket',
    options: {
      listen: option('HOST:PORT', 'where the web UI listens (default 127.0.0.1:7420; beyond loopback: HTTPS)', text),
      'tls-cert': option('FILE', 'a PEM certificate to serve (default beyond loopback: a self-signed one in the data dir)', text),
      'tls-key': option('FILE', "the certificate's PEM private key", text),
      'no-tls': flag('plain HTTP even beyond loopback (passwords then cross the network in clear)'),
      'allow-host': {
        ...option('NAME', "a host name clients use to reach this server (default: this machine's names and the listen address)", text),
        multiple: true,
      },
      etcd: {
        ...option('URL', 'an etcd you run: the cluster keeps its state there and this host runs no etcd member', text),
        multiple: true,
      },
      'etcd-ca': option('FILE', "the PEM CA of that etcd's server certificate (https:// URLs)", text),
      'etcd-cert': option('FILE', "this host's PEM client certificate for that etcd", text),
      'etcd-key': option('FILE', 'its PEM private key', text),
    },
    async run({ o, dataDir }) {
      const { runServe } = await import('../../server/serve.js');
      return await runServe({
        dataDir,
        listen: o.listen,
        tlsCert: o['tls-cert'],
        tlsKey: o['tls-key'],
        noTls: Boolean(o['no-tls']),
        allowHosts: o['allow-host'] as string[] | undefined,
        etcd: etcdOption(o),
      });
    },
  }),
];

function etcdOption(o: { etcd?: unknown; 'etcd-ca'?: string; 'etcd-cert'?: string; 'etcd-key'?: string }) {
  const urls = ((o.etcd as string[] | undefined) ?? []).flatMap((u) => u.split(',')).filter(Boolean);
  if (!urls.length) {
    if (o['etcd-ca'] || o['etcd-cert'] || o['etcd-key']) throw new UsageError('--etcd-ca, --etcd-cert and --etcd-key go with --etcd URL');
    return undefined;
  }
  return { endpoints: urls, ca: o['etcd-ca'], cert: o['etcd-cert'], key: o['etcd-key'] };
}
