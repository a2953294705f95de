// NICs, forwards and networks: `vm nic …`, `vm forward …`, `network list`. Each change is a
// vm.update of the whole NIC list, so what a running VM cannot take waits for its next boot.
import type { ControlClient } from '../client.js';
import type { Nic, NicAddresses, NicInput, PortForward, VmInfo } from '../../core/api/contract.js';
import { out, printJson, shellQuote, table } from '../format.js';
import { command, flag, option, UsageError } from '../table.js';
import { forward, nic, text } from '../values.js';

const fmtForward = (f: PortForward) => `${f.proto} ${f.hostAddr}:${f.hostPort} -> ${f.guestPort}${f.exposed ? ' (exposed)' : ''}`;
const where = (n: Nic) => n.bridge ?? n.network ?? '-';

function nicTable(nics: readonly Nic[], addrs: readonly NicAddresses[] | null): string {
  if (!nics.length) return 'No NICs: the VM has no network. Add one: corral vm nic add NAME passt';
  const addr = (id: string) => {
    const a = addrs?.find((x) => x.nic === id);
    return a ? a.addresses.join(', ') || (a.source === 'unknown' ? 'unknown' : 'not seen yet') : '-';
  };
  return table([
    ['ID', 'KIND', 'MAC', 'ON', 'ADDRESSES', 'FORWARDS'],
    ...nics.map((n) => [n.id, n.kind, n.mac, where(n), addr(n.id), n.forwards.map(fmtForward).join(', ') || '-']),
  ]);
}

/** Saves a new NIC list and says what waits for the next boot. */
async function saveNics(c: ControlClient, vm: VmInfo, nics: NicInput[], done: string): Promise<number> {
  const r = await c.call('vm.update', { vm: vm.id, nics });
  const later = r.notLive.find((n) => n.field === 'nics');
  out(later ? `${done}; it applies at the next boot (${later.why})` : done);
  return 0;
}

/** The NIC a forward goes on: the one named, else the first passt or user NIC. */
function forwardNic(vm: VmInfo, id: string | undefined): Nic {
  const found = id ? vm.config.nics.find((n) => n.id === id) : vm.config.nics.find((n) => n.kind === 'passt' || n.kind === 'user');
  if (!found)
    throw new UsageError(
      id
        ? `"${vm.name}" has no NIC ${id} (corral vm nic list ${shellQuote(vm.name)})`
        : `"${vm.name}" has no passt or user NIC to forward through`,
    );
  return found;
}

export const networkCommands = [
  command({
    words: 'vm nic list',
    args: ['NAME'],
    summary: "List a VM's NICs: kind, MAC, bridge or network, forwards",
    options: { json: flag('print JSON for scripts') },
    async run({ o, args: [name], host }) {
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      // addresses of a running guest, as far as the host sees them
      const addrs = vm.booted ? await c.call('vm.addresses', { vm: vm.id }) : null;
      if (o.json) printJson(vm.config.nics.map((n) => ({ ...n, addresses: addrs?.find((a) => a.nic === n.id) ?? null })));
      else out(nicTable(vm.config.nics, addrs));
      return 0;
    },
  }),
  command({
    words: 'vm nic add',
    args: ['NAME', 'KIND'],
    summary: 'Add a NIC: passt, user, bridge:BRIDGE or private:NETWORK',
    options: { mac: option('MAC', 'its MAC address (default: a random 52:54:00:…)', text) },
    async run({ o, args: [name, kind], host }) {
      const add = nic(kind, 'KIND');
      if (!add) throw new UsageError('KIND none adds nothing: remove NICs with corral vm nic remove');
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      return saveNics(c, vm, [...vm.config.nics, { ...add, ...(o.mac ? { mac: o.mac } : {}) }], `Added a ${add.kind} NIC to "${vm.name}"`);
    },
  }),
  command({
    words: 'vm nic remove',
    args: ['NAME', 'ID'],
    summary: 'Remove a NIC (net0, net1…) with its forwards',
    options: {},
    async run({ args: [name, id], host }) {
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      if (!vm.config.nics.some((n) => n.id === id))
        throw new UsageError(`"${vm.name}" has no NIC ${id} (corral vm nic list ${shellQuote(vm.name)})`);
      return saveNics(
        c,
        vm,
        vm.config.nics.filter((n) => n.id !== id),
        `Removed ${id} from "${vm.name}"`,
      );
    },
  }),
  command({
    words: 'vm forward list',
    args: ['NAME'],
    summary: "List a VM's port forwards, per NIC",
    options: { json: flag('print JSON for scripts') },
    async run({ o, args: [name], host }) {
      const vm = await (await host()).call('vm.get', { vm: name });
      const rows = vm.config.nics.flatMap((n) => n.forwards.map((f) => ({ nic: n.id, ...f })));
      if (o.json) printJson(rows);
      else if (!rows.length) out(`No forwards. Add one: corral vm forward add ${shellQuote(vm.name)} tcp:2222:22`);
      else
        out(
          table([
            ['NIC', 'PROTO', 'HOST', 'GUEST PORT', 'EXPOSED'],
            ...rows.map((r) => [r.nic, r.proto, `${r.hostAddr}:${r.hostPort}`, String(r.guestPort), r.exposed ? 'yes' : 'no']),
          ]),
        );
      return 0;
    },
  }),
  command({
    words: 'vm forward add',
    args: ['NAME', 'SPEC'],
    summary: 'Forward a host port to the guest: tcp:HOSTPORT:GUESTPORT (beyond loopback: tcp:ADDR:HOST:GUEST:exposed)',
    options: { 'nic-id': option('ID', 'the NIC (default: the first passt or user NIC)', text) },
    async run({ o, args: [name, spec], host }) {
      const f = forward(spec, 'SPEC');
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      const target = forwardNic(vm, o['nic-id']);
      const nics = vm.config.nics.map((n) => (n.id === target.id ? { ...n, forwards: [...n.forwards, f] } : n));
      return saveNics(c, vm, nics, `Forwarding ${fmtForward(f)} on ${target.id} of "${vm.name}"`);
    },
  }),
  command({
    words: 'vm forward remove',
    args: ['NAME', 'PORT'],
    summary: 'Remove the forward of host port PORT (tcp; udp:PORT for udp)',
    options: {},
    async run({ args: [name, spec], host }) {
      const m = /^(?:(tcp|udp):)?(\d+)$/.exec(spec);
      if (!m) throw new UsageError(`PORT must be a port such as 2222 or udp:5353, not "${spec}"`);
      const proto = m[1] ?? 'tcp';
      const port = Number(m[2]);
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      const hit = (f: PortForward) => f.proto === proto && f.hostPort === port;
      if (!vm.config.nics.some((n) => n.forwards.some(hit))) throw new UsageError(`"${vm.name}" forwards no ${proto} host port ${port}`);
      const nics = vm.config.nics.map((n) => ({ ...n, forwards: n.forwards.filter((f) => !hit(f)) }));
      return saveNics(c, vm, nics, `Removed the forward of ${proto} host port ${port} from "${vm.name}"`);
    },
  }),
  command({
    words: 'network list',
    args: [],
    summary: 'List the private networks in use and the host bridges VMs can join',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const n = await (await host()).call('network.list', {});
      if (o.json) {
        printJson(n);
        return 0;
      }
      const rows = [
        ...n.private.map((p) => ['private', p.name, 'VMs of this host only', p.vms.join(', ')]),
        ...n.bridges.map((b) => ['bridge', b.name, b.allowed ? 'allowed' : 'not in /etc/qemu/bridge.conf', b.vms.join(', ') || '-']),
      ];
      out(rows.length ? table([['KIND', 'NAME', 'ACCESS', 'VMS'], ...rows]) : 'No private networks in use and no host bridges.');
      out(`passt: ${n.passt ? 'installed (new VMs use it)' : 'not installed (new VMs use user-mode networking; apt install passt)'}`);
      return 0;
    },
  }),
];
