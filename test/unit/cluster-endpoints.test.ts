// Which etcd members a host's client talks to: a host that runs a member, its own alone (a
// stream on another host's member hangs when that host's link goes down); any other host,
// every voting member it knows.
import { describe, expect, it } from 'vitest';
import { clientEndpoints, type ClusterConfig } from '../../electron/core/cluster/config';

const base: ClusterConfig = {
  clusterId: 'f'.repeat(64),
  hostId: 'h1',
  name: 'b',
  address: '10.0.0.2',
  ports: { peer: 7421, join: 7422, etcdClient: 7423, etcdPeer: 7424 },
  etcdRole: 'member',
  endpoints: ['https://10.0.0.2:7423', 'https://10.0.0.1:7423', 'https://10.0.0.3:7423'],
};

describe('clientEndpoints', () => {
  it('gives a member host its own member only, whatever else it learnt', () => {
    expect(clientEndpoints(base)).toEqual(['https://10.0.0.2:7423']);
    expect(clientEndpoints({ ...base, endpoints: ['https://10.0.0.1:7423'] })).toEqual(['https://10.0.0.2:7423']);
  });

  it('brackets an IPv6 address', () => {
    expect(clientEndpoints({ ...base, address: 'fd00::2' })).toEqual(['https://[fd00::2]:7423']);
  });

  it('gives a host without a member every endpoint it knows', () => {
    const client = { ...base, etcdRole: 'client' as const, endpoints: ['https://10.0.0.1:7423', 'https://10.0.0.3:7423'] };
    expect(clientEndpoints(client)).toEqual(client.endpoints);
  });
});
