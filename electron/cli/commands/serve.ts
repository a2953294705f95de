// `corral serve`: the host without the desktop app. It owns the data dir, so it needs no host itself.
import { command, option } from '../table.js';
import { text } from '../values.js';

export const serveCommands = [
  command({
    words: 'serve',
    args: [],
    summary: 'Run the host without the desktop app: the VMs, the web UI and the control socket',
    options: {
      listen: option('HOST:PORT', 'where the web UI listens (default 127.0.0.1:7420; beyond loopback means plain HTTP)', text),
    },
    async run({ o, dataDir }) {
      const { runServe } = await import('../../server/serve.js');
      return await runServe({ dataDir, listen: o.listen });
    },
  }),
];
