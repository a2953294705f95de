import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../electron/server/auth';
import { allowedNames, hostAllowed, isLoopbackBind } from '../../electron/server/host-check';

describe('the Host check of corral serve', () => {
  it('on loopback, takes only loopback names on its own port', () => {
    const names = allowedNames('127.0.0.1');
    expect(hostAllowed('127.0.0.1:7420', names, 7420, false)).toBe(true);
    expect(hostAllowed('localhost:7420', names, 7420, false)).toBe(true);
    expect(hostAllowed('[::1]:7420', names, 7420, false)).toBe(true);
    expect(hostAllowed('127.0.0.1:7421', names, 7420, false)).toBe(false);
    expect(hostAllowed(`${os.hostname()}:7420`, names, 7420, false)).toBe(false);
    expect(hostAllowed('evil.example:7420', names, 7420, false)).toBe(false);
    expect(hostAllowed(undefined, names, 7420, false)).toBe(false);
  });

  it("beyond loopback, takes the machine's names and the listen address, or those given", () => {
    const names = allowedNames('192.0.2.10');
    expect(hostAllowed('192.0.2.10:7420', names, 7420, true)).toBe(true);
    expect(hostAllowed(`${os.hostname().toUpperCase()}:7420`, names, 7420, true)).toBe(true);
    expect(hostAllowed('rebound.example:7420', names, 7420, true)).toBe(false);
    // the scheme's default port when the header has none
    expect(hostAllowed('192.0.2.10', names, 443, true)).toBe(true);
    expect(hostAllowed('192.0.2.10', names, 7420, true)).toBe(false);
    const given = allowedNames('192.0.2.10', ['vms.home.arpa']);
    expect(hostAllowed('vms.home.arpa:7420', given, 7420, true)).toBe(true);
    expect(hostAllowed(`${os.hostname()}:7420`, given, 7420, true)).toBe(false);
    expect(hostAllowed('192.0.2.10:7420', given, 7420, true)).toBe(true);
  });

  it('tells loopback binds and peers from the others', () => {
    expect(isLoopbackBind('127.0.0.2')).toBe(true);
    expect(isLoopbackBind('0.0.0.0')).toBe(false);
    expect(isLoopbackBind('10.1.2.3')).toBe(false);
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::1')).toBe(true);
    expect(isLoopbackAddress('10.213.7.1')).toBe(false);
    expect(isLoopbackAddress(undefined)).toBe(false);
  });
});
