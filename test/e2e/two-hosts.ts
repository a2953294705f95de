// Two `corral serve` hosts on loopback made one cluster, for the e2e tests of cluster pages:
// alpha inits, beta joins, and both report before the test goes on.
import { freePort, waitFor } from '../helpers';
import type { WsApi } from '../integration/ws-client';

const ports = async () => ({ peer: await freePort(), join: await freePort(), etcdClient: await freePort(), etcdPeer: await freePort() });

export async function formAlphaBeta(a: WsApi, b: WsApi): Promise<void> {
  const t = await a.call('cluster.init', { name: 'alpha', address: '127.0.0.1', ports: await ports() });
  await b.call('cluster.join', { url: t.url, token: t.token, name: 'beta', address: '127.0.0.1', ports: await ports() });
  await waitFor(
    'two reporting hosts',
    async () => (await a.call('cluster.status', {})).hosts.filter((h) => h.reporting).length === 2,
    120_000,
    300,
  );
}
