// A real etcd cluster for tests: Debian's /usr/bin/etcd, N members on loopback, every port from
// freePort() (a system etcd may hold 2379/2380), data in a temp dir. stop() kills every member.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { etcdEnv, etcdTuningArgs } from '../../electron/core/cluster/etcd-tuning';
import { freePort, tempDir, waitFor } from '../helpers';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  child: ChildProcess;
}

export class EtcdCluster {
  private constructor(
    readonly dir: string,
    readonly members: EtcdMember[],
  ) {}

  static async start(size = 3): Promise<EtcdCluster> {
    const dir = tempDir('corral-etcd-');
    const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
    const names = Array.from({ length: size }, (_, i) => `m${i}`);
    const peer = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
    const initial = names.map((n, i) => `${n}=${peer(i)}`).join(',');
    const members = names.map((name, i) => {
      const clientUrl = `http://127.0.0.1:${ports[2 * i]}`;
      const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
      const child = spawn(
        '/usr/bin/etcd',
        [
          '--name', name,
          '--data-dir', path.join(dir, name),
          '--listen-client-urls', clientUrl,
          '--advertise-client-urls', clientUrl,
          '--listen-peer-urls', peer(i),
          '--initial-advertise-peer-urls', peer(i),
          '--initial-cluster', initial,
          '--initial-cluster-token', path.basename(dir),
          '--initial-cluster-state', 'new',
          // as the product runs its members: the HA bench measures their idle cost
          ...etcdTuningArgs(),
        ], // prettier-ignore
        { stdio: ['ignore', log, log], env: etcdEnv(process.env) },
      );
      fs.closeSync(log);
      return { name, clientUrl, child };
    });
    const cluster = new EtcdCluster(dir, members);
    const probe = new Etcd3({ hosts: members.map((m) => m.clientUrl) });
    try {
      await waitFor('etcd to elect a leader', async () => (await probe.put('probe').value('1').exec(), true), 60_000, 200);
    } finally {
      probe.close();
    }
    return cluster;
  }

  client(member: number | 'all' = 'all'): Etcd3 {
    const hosts = member === 'all' ? this.members.map((m) => m.clientUrl) : [this.members[member]!.clientUrl];
    return new Etcd3({ hosts });
  }

  stop(): void {
    for (const m of this.members) {
      try {
        m.child.kill('SIGCONT');
        m.child.kill('SIGKILL');
      } catch {}
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
