// Guest addresses from the guest agent: a reply recorded from a real qemu-ga 7.2
// (guest-network-get-interfaces), matched to NICs by MAC; the host's view when no agent answers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Nic } from '../../electron/core/api/contract';
import { GuestAddresses, parseAgentInterfaces } from '../../electron/core/vms/agent-addresses';

const reply = (JSON.parse(fs.readFileSync(path.join(__dirname, 'qga-network-reply.json'), 'utf8')) as { return: unknown }).return;
const nic = (id: string, kind: Nic['kind'], mac: string): Nic => ({ id, kind, mac, bridge: null, network: null, forwards: [] });

describe('addresses from the guest agent', () => {
  it("matches the agent's interfaces to the NICs by MAC, IPv4 first, without link-local", () => {
    const nics = [nic('net0', 'passt', '02:FC:00:00:00:01'), nic('net1', 'private', '52:54:00:aa:bb:cc')];
    expect(parseAgentInterfaces(nics, reply)).toEqual([
      { nic: 'net0', addresses: ['192.0.2.2', 'fd00::2'], source: 'agent', note: "from the guest agent: the guest's interface eth0" },
      // not in the reply: the host's view is used for it
      null,
    ]);
  });

  it('an interface without addresses has none; a reply of another shape is no reply', () => {
    expect(parseAgentInterfaces([nic('net0', 'user', 'ca:c2:ce:f9:27:9e')], reply)).toEqual([
      expect.objectContaining({ nic: 'net0', addresses: [], source: 'agent' }),
    ]);
    expect(parseAgentInterfaces([nic('net0', 'user', 'ca:c2:ce:f9:27:9e')], { error: 'x' })).toBeNull();
    expect(parseAgentInterfaces([nic('net0', 'user', 'ca:c2:ce:f9:27:9e')], [{ name: 1 }])).toBeNull();
  });

  it("falls back to the host's view when no agent answers, and does not wait for it again soon", async () => {
    let now = 1_000_000;
    const book = new GuestAddresses(() => now);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-agent-'));
    const socket = path.join(dir, 'qga.sock');
    const nics = [nic('net0', 'user', '52:54:00:00:00:01')];
    const first = await book.of(nics, socket);
    expect(first).toEqual([
      expect.objectContaining({
        nic: 'net0',
        addresses: ['10.0.2.15'],
        source: 'host',
        note: expect.stringMatching(/no guest agent answered/),
      }),
    ]);
    // a silent agent is remembered: the next answer comes without asking (the socket may exist now)
    fs.writeFileSync(socket, '');
    expect(await book.of(nics, socket)).toEqual(first);
    now += 60_000;
    // asked again after a while: still no agent (a file, not a socket), still the host's view
    expect((await book.of(nics, socket))[0]!.source).toBe('host');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
