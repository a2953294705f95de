// `corral serve --etcd URL`: two hosts keep their cluster in an etcd the test runs (Debian's
// etcd, free ports, plain http on loopback) instead of etcd members of their own. Both are
// clients (role external), no etcd runs under either, the inventory and placement work across
// them, and bad --etcd options stop serve before it starts anything.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, freePort, tempDir, waitFor } from '../helpers';
import { EtcdCluster } from './etcd-cluster';
import { corral, ServeProcess } from './serve-process';
import { WsApi } from './ws-client';

const ports = async () => ({ peer: await freePort(), join: await freePort(), etcdClient: await freePort(), etcdPeer: await freePort() });

describe('a cluster on an etcd the user runs', () => {
  const dirs = [tempDir('corral-ext-a-'), tempDir('corral-ext-b-')];
  let etcd: EtcdCluster;
  let serves: ServeProcess[] = [];
  let apis: WsApi[] = [];

  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
    const url = etcd.members[0]!.clientUrl;
    serves = await Promise.all(dirs.map((d) => ServeProcess.start(d, '127.0.0.1:0', {}, ['--etcd', url])));
    apis = await Promise.all(serves.map((s) => WsApi.connect(s.port, s.token)));
  }, 120_000);

  afterAll(async () => {
    for (const api of apis) api.close();
    for (const s of serves) await s.stop();
    etcd?.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('forms with init and join as etcd clients, and runs no etcd member', async () => {
    const [a, b] = apis as [WsApi, WsApi];
    const t = await a.call('cluster.init', { name: 'ea', address: '127.0.0.1', ports: await ports() });
    const joined = await b.call('cluster.join', { url: t.url, token: t.token, name: 'eb', address: '127.0.0.1', ports: await ports() });
    expect(joined.hosts.map((h) => h.etcdRole)).toEqual(['external', 'external']);
    const s = await waitFor('two reporting hosts', async () => {
      const st = await a.call('cluster.status', {});
      return st.hosts.filter((h) => h.reporting).length === 2 ? st : null;
    });
    // the members are the user's etcd's, not the hosts'
    expect(s.members.map((m) => m.clientUrls)).toEqual([[etcd.members[0]!.clientUrl]]);
    for (const d of dirs) expect(fs.existsSync(path.join(d, 'cluster', 'etcd'))).toBe(false);
    // the cluster's state is in that etcd
    const client = etcd.client();
    try {
      expect(Object.keys(await client.getAll().prefix('/corral/hosts/').strings())).toHaveLength(2);
    } finally {
      client.close();
    }
  });

  it('lists and places VMs across the hosts', async () => {
    const [a, b] = apis as [WsApi, WsApi];
    const vm = await b.call('vm.create', { name: 'ext-vm', kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, memoryMiB: 64, host: 'ea' });
    expect(vm.host?.name).toBe('ea');
    await waitFor("ea's VM on eb", async () => (await b.call('vm.list', {})).find((v) => v.name === 'ext-vm')?.host?.name === 'ea');
    expect((await a.call('vm.list', {})).find((v) => v.name === 'ext-vm')?.host).toMatchObject({ name: 'ea', reporting: true });
  });

  it('refuses bad --etcd options before it starts', async () => {
    const dir = tempDir('corral-ext-bad-');
    try {
      const noKey = await corral(dir, ['serve', '--listen', '127.0.0.1:0', '--etcd', 'https://127.0.0.1:1', '--etcd-cert', '/nonexistent']);
      expect(noKey.code).not.toBe(0);
      expect(noKey.stderr).toMatch(/--etcd-cert and --etcd-key go together/);
      const lone = await corral(dir, ['serve', '--listen', '127.0.0.1:0', '--etcd-ca', '/nonexistent']);
      expect(lone.stderr).toMatch(/--etcd-ca, --etcd-cert and --etcd-key go with --etcd URL/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
