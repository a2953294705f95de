// The cluster row: inventory latency. Three hosts in network namespaces (real `corral serve`, an
// etcd member each); a VM on host C is paused and resumed; each change's time on C (its
// stateSince) is compared with the moment host A's API pushes it (vm.changed on A's control
// socket, what the UI and the CLI watch). Floor: etcd's own put → watch latency between C's and
// A's members, measured in the same run. Needs root (namespaces), like the cluster test.
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { VmInfo } from '../../electron/core/api/contract';
import { ControlClient } from '../../electron/cli/client';
import { FIXTURE, FIXTURE_DIR, BOOT_MS, waitFor } from '../helpers';
import { NetnsHosts, ok, type NsHost } from '../integration/netns-hosts';
import { median, ms, type Row } from './lib';

const CHANGES = 12;
const TARGET_MS = 200;

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;
const control = (h: NsHost) => ControlClient.connect(path.join(h.data, 'control.sock'), h.data);

function etcdOf(h: NsHost): Etcd3 {
  const dir = path.join(h.data, 'cluster');
  return new Etcd3({
    hosts: [`https://${h.address}:7423`],
    credentials: {
      rootCertificate: fs.readFileSync(path.join(dir, 'ca.pem')),
      certChain: fs.readFileSync(path.join(dir, 'host.pem')),
      privateKey: fs.readFileSync(path.join(dir, 'host-key.pem')),
    },
  });
}

/** etcd alone: a put through C's member, seen by a watch on A's member. */
async function etcdFloor(a: NsHost, c: NsHost): Promise<number[]> {
  const [ea, ec] = [etcdOf(a), etcdOf(c)];
  try {
    const w = await ea.watch().key('/bench/floor').create();
    const seen: number[] = [];
    const got = new Map<string, number>();
    w.on('put', (kv) => got.set(kv.value.toString(), Date.now()));
    for (let i = 0; i < CHANGES; i++) {
      const t0 = Date.now();
      await ec.put('/bench/floor').value(String(i));
      const t1 = await waitFor('the watch', () => got.get(String(i)), 10_000, 1);
      seen.push(t1 - t0);
    }
    await w.cancel();
    await ea.delete().key('/bench/floor');
    return seen;
  } finally {
    ea.close();
    ec.close();
  }
}

export async function clusterRows(): Promise<Row[]> {
  const net = new NetnsHosts(['a', 'b', 'c'], 'bcl');
  const [A, , C] = net.hosts as [NsHost, NsHost, NsHost];
  try {
    await net.start();
    await ok(C.data, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
    await net.form();
    await ok(C.data, ['vm', 'create', 'inv', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '128M', '--host', 'c']);
    await ok(C.data, ['vm', 'start', 'inv']);
    const onA = await control(A);
    const onC = await control(C);
    try {
      // A's API as a client sees it: the pushed vm.changed of C's VM, stamped on arrival
      const arrivals: Array<{ state: string; at: number }> = [];
      onA.on('vm.changed', (vm: VmInfo) => vm.name === 'inv' && arrivals.push({ state: vm.state, at: Date.now() }));
      await onA.call('events.subscribe', {});
      // (already running before the subscription: A's list says so, no change is pushed)
      await waitFor(
        'A to see the VM running',
        async () => (await onA.call('vm.list', {})).find((v) => v.name === 'inv')?.state === 'running',
        BOOT_MS,
        100,
      );
      const lat: number[] = [];
      for (let i = 0; i < CHANGES; i++) {
        const op = i % 2 ? 'vm.resume' : 'vm.pause';
        const want = i % 2 ? 'running' : 'paused';
        const from = arrivals.length;
        const vm = await onC.call(op, { vm: 'inv' });
        const seen = await waitFor(`A to see ${want}`, () => arrivals.slice(from).find((x) => x.state === want), 30_000, 1);
        lat.push(seen.at - vm.stateSince);
        await new Promise((r) => setTimeout(r, 150));
      }
      const floor = await etcdFloor(A, C);
      const med = median(lat);
      return [
        {
          name: `cluster: state change on host C → host A's API, median of ${CHANGES}`,
          value: ms(med),
          floor: `etcd put→watch ${ms(median(floor))}`,
          target: `≤ ${TARGET_MS} ms`,
          ok: med <= TARGET_MS,
        },
        {
          name: 'cluster: state change on host C → host A, p95',
          value: ms(p95(lat)),
          floor: `etcd p95 ${ms(p95(floor))}`,
          target: `≤ ${TARGET_MS} ms`,
          ok: p95(lat) <= TARGET_MS,
        },
      ];
    } finally {
      onA.close();
      onC.close();
    }
  } finally {
    await net.stop();
  }
}
