// `corral serve`: the host without the desktop app. It owns the data dir, so it needs no host itself.
import { command, flag, option } from '../table.js';
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
      });
    },
  }),
];
