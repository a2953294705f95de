import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasDefaultRoute } from '../../electron/core/qemu/passt';
import { tempDir } from '../helpers';

const dir = tempDir('corral-route-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function procNet(name: string, route: string[], ipv6: string[]): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'route'), ['Iface\tDestination\tGateway \tFlags', ...route].join('\n'));
  fs.writeFileSync(path.join(d, 'ipv6_route'), ipv6.join('\n'));
  return d;
}

const z32 = '0'.repeat(32);
describe('whether passt can run: a default route', () => {
  it('sees an IPv4 or an IPv6 default, and not a LAN alone or the loopback reject route', () => {
    expect(hasDefaultRoute(procNet('v4', ['eth0\t00000000\t010200C0\t0003', 'eth0\t000200C0\t00000000\t0001'], []))).toBe(true);
    expect(
      hasDefaultRoute(
        procNet(
          'v6',
          ['eth0\t000200C0\t00000000\t0001'],
          [`${z32} 00 ${z32} 00 fd00${'0'.repeat(27)}1 00000400 00000003 00000000 00000003     eth0`],
        ),
      ),
    ).toBe(true);
    expect(
      hasDefaultRoute(
        procNet(
          'lan',
          ['veth0\t00004D0A\t00000000\t0001'],
          [`fe80${'0'.repeat(28)} 40 ${z32} 00 ${z32} 00000100 00000001 00000000 00000001 veth0`],
        ),
      ),
    ).toBe(false);
    expect(hasDefaultRoute(procNet('lo', [], [`${z32} 00 ${z32} 00 ${z32} ffffffff 00000001 00000000 00200200 lo`]))).toBe(false);
    expect(hasDefaultRoute(path.join(dir, 'missing'))).toBe(false);
  });
});
