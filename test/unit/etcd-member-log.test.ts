// The etcd member's log goes to a file, not to a pipe the host must keep reading: a stalled host
// process must not stall its member (as the cluster's raft leader, one blocked on writing its log
// answered no lease keepalive, and every host lost its lease). A stand-in for etcd writes far more
// than a pipe holds while this process's event loop is blocked, and must get past it.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { certPaths } from '../../electron/core/cluster/ca';
import { EtcdMember, lastLines } from '../../electron/core/cluster/etcd-member';
import { tempDir } from '../helpers';

const dirs: string[] = [];
const members: EtcdMember[] = [];
afterEach(async () => {
  await Promise.all(members.splice(0).map((m) => m.stop()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Blocks this thread, as a frozen or stuck host process would be, until `done()` or `ms`. */
function blockUntil(done: () => boolean, ms: number): boolean {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (done()) return true;
    Atomics.wait(cell, 0, 0, 50);
  }
  return done();
}

function member(dir: string, script: string): EtcdMember {
  const binary = path.join(dir, 'fake-etcd');
  fs.writeFileSync(binary, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const m = new EtcdMember({
    name: 'h1',
    dataDir: path.join(dir, 'cluster', 'etcd'),
    address: '127.0.0.1',
    clientPort: 1,
    peerPort: 2,
    certs: certPaths(path.join(dir, 'cluster')),
    initialCluster: 'h1=https://127.0.0.1:2',
    initialState: 'new',
    binary,
  });
  members.push(m);
  return m;
}

describe('the etcd member log', () => {
  it('lets etcd write a megabyte of log while the host process is stalled', () => {
    const dir = tempDir('corral-etcdlog-');
    dirs.push(dir);
    const done = path.join(dir, 'done');
    const m = member(
      dir,
      `head -c 1048500 /dev/zero | tr '\\0' x | fold -w 100 >&2\necho >&2\necho 'the last line' >&2\ntouch ${done}\nexec sleep 60`,
    );
    m.start();
    expect(blockUntil(() => fs.existsSync(done), 20_000)).toBe(true);
    expect(m.tail(1)).toEqual(['the last line']);
    expect(fs.statSync(m.logFile).mode & 0o777).toBe(0o600);
    expect(m.logFile).toBe(path.join(dir, 'cluster', 'etcd.log'));
  });

  it('reads the last lines of a log, and none of a missing one', () => {
    const dir = tempDir('corral-etcdlog-');
    dirs.push(dir);
    const f = path.join(dir, 'x.log');
    fs.writeFileSync(f, Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect(lastLines(f, 3)).toEqual(['line 4997', 'line 4998', 'line 4999']);
    expect(lastLines(path.join(dir, 'missing.log'), 3)).toEqual([]);
  });
});
