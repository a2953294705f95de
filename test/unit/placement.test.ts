import { describe, expect, it } from 'vitest';
import { judge, rank, refusal, roomOf, type PlacementHost } from '../../electron/core/cluster/placement';
import type { HostAlive } from '../../electron/core/cluster/hosts';
import { admit } from '../../electron/core/resources/host-capacity';

const GiB = 1024 ** 3;
const alive = (memoryGiB: number, committedGiB: number, extra: Partial<HostAlive> = {}): HostAlive => ({
  at: 0,
  cpus: 4,
  memoryBytes: memoryGiB * GiB,
  committedBytes: committedGiB * GiB,
  vms: 0,
  running: 0,
  ...extra,
});
const host = (name: string, a: HostAlive | null, self = false): PlacementHost => ({ id: `id-${name}`, name, self, alive: a });

describe('placement', () => {
  it('orders the admitting hosts by room, most first', () => {
    const hosts = [host('a', alive(8, 6), true), host('b', alive(8, 1)), host('c', alive(16, 12))];
    expect(rank(judge({ name: 'web', memoryBytes: GiB }, hosts, admit)).map((h) => h.name)).toEqual(['b', 'c', 'a']);
  });

  it('counts the overcommit ratio a host publishes', () => {
    expect(roomOf(alive(8, 10, { overcommit: 1.5 }))).toBe(2 * GiB);
    const hosts = [host('a', alive(8, 4)), host('b', alive(8, 6, { overcommit: 2 }))];
    expect(rank(judge({ name: 'x', memoryBytes: GiB }, hosts, admit)).map((h) => h.name)).toEqual(['b', 'a']);
  });

  it('prefers this host on a tie, then the host running fewer VMs', () => {
    const tie = [
      host('a', alive(8, 2, { running: 3 })),
      host('b', alive(8, 2, { running: 1 })),
      host('c', alive(8, 2, { running: 5 }), true),
    ];
    expect(rank(judge({ name: 'x', memoryBytes: GiB }, tie, admit)).map((h) => h.name)).toEqual(['c', 'b', 'a']);
  });

  it("refuses a host without room or without a lease, and says each host's reason", () => {
    const hosts = [host('b', alive(4, 3.5)), host('a', null)];
    const v = judge({ name: 'big', memoryBytes: GiB }, hosts, admit);
    expect(rank(v)).toEqual([]);
    const why = refusal(
      'big',
      v.flatMap((x) => (x.ok ? [] : [{ host: x.host.name, why: x.why }])),
    );
    expect(why).toMatch(
      /^no host of the cluster can take "big": a: not reporting \(its lease expired\); b: not enough memory to start "big"/,
    );
  });
});
