// Guest addresses from a real qemu-guest-agent: the agent runs on this machine (the test guest
// has none), on a unix socket like the one QEMU gives a guest's agent, and reports the
// machine's own interfaces; a NIC with one of their MACs gets that interface's addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers';
import { GuestAddresses } from '../../electron/core/vms/agent-addresses';

describe('addresses from a guest agent', () => {
  let agent: ChildProcess | null = null;
  afterAll(() => agent?.kill('SIGKILL'));

  it("answers with the agent's view of the NIC with that MAC", async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'qga.sock');
    fs.mkdirSync(path.join(dir, 'state'));
    agent = spawn('qemu-ga', ['-m', 'unix-listen', '-p', socket, '-t', path.join(dir, 'state')], { stdio: 'ignore' });
    await waitFor('the agent socket', () => fs.existsSync(socket), 30_000, 50);
    // an interface of this machine with an IPv4 address, as the "guest's" NIC
    const [name, addrs] = Object.entries(os.networkInterfaces()).find(([, a]) => a?.some((x) => x.family === 'IPv4' && !x.internal)) ?? [];
    expect(name).toBeTruthy();
    const v4 = addrs!.find((x) => x.family === 'IPv4')!;
    const nics = [{ id: 'net0', kind: 'passt' as const, mac: v4.mac, bridge: null, network: null, forwards: [] }];
    const [got] = await new GuestAddresses().of(nics, socket);
    expect(got).toMatchObject({ nic: 'net0', source: 'agent', note: `from the guest agent: the guest's interface ${name}` });
    expect(got!.addresses[0]).toBe(v4.address);
  });
});
