// The API's handlers: each contract method mapped onto the VM layer and the consoles, plus per-connection
// subscriptions (events, serial consoles) that end with the connection.
import { CorralError, type Handlers, type Session } from '../api/dispatcher.js';
import type { EventRecord, HostInfo, HostResources, VmInfo, VmStats } from '../api/contract.js';
import type { MachineConsoles } from '../consoles/machine-consoles.js';
import { readSerialLog } from '../qemu/serial-link.js';
import { SerialViewers } from '../consoles/serial-viewers.js';
import { hostShell, sshInto, type Terminals } from '../consoles/terminals.js';
import type { TicketBook } from '../consoles/tickets.js';
import type { ResourceMonitor } from '../resources/monitor.js';
import type { EventRepo } from '../store/event-repo.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import type { Portable } from '../portable/index.js';
import type { Vms } from '../vms/index.js';
import type { SnapshotLayer } from '../vms/snapshot-layer.js';
import { networkList } from '../vms/network-list.js';
import { GuestAddresses } from '../vms/agent-addresses.js';
import type { AccountHandlers } from './account-handlers.js';
import type { Migration } from './migration-handlers.js';

/** Answered by the cluster link (cluster-link.ts), which wraps these handlers. */
export type ClusterMethod = Extract<keyof Handlers, `cluster.${string}` | 'host.evacuate' | 'host.restore'>;
import type { HaHandlers } from './ha-handlers.js';

export interface HandlerDeps {
  vms: Vms;
  snapshots: SnapshotLayer;
  /** Clones, export and import. */
  portable: Portable;
  consoles: MachineConsoles;
  /** Where a VM's own files are (known_hosts for ssh). */
  vmDir: (vmId: string) => string;
  serialLog: (vmId: string) => string;
  /** The VM's guest agent socket (addresses from the agent). */
  agentSocket: (vmId: string) => string;
  events: EventRepo;
  settings: SettingsRepo;
  info: () => HostInfo;
  tickets: TicketBook;
  terminals: Terminals;
  /** Where the console WebSocket lives when not on the page's own origin (the desktop app). */
  consoleBase: () => string | null;
  monitor: ResourceMonitor;
  onStats: (fn: (at: number, vms: VmStats[], host: HostResources) => void) => void;
  /** user.*, token.*, audit.list and auth.whoami. */
  accountHandlers: AccountHandlers;
  /** vm.migrate and the target's migration.* calls. */
  migration: Migration;
  /** ha.status, ha.balance. */
  haHandlers: HaHandlers;
}

export function makeHandlers({
  vms,
  snapshots: { snapshots, scheduler },
  portable,
  consoles,
  vmDir,
  serialLog,
  agentSocket,
  events,
  settings,
  info,
  tickets,
  terminals,
  consoleBase,
  monitor,
  onStats,
  accountHandlers,
  migration,
  haHandlers,
}: HandlerDeps): Omit<Handlers, ClusterMethod> {
  // per session: which event streams it asked for
  const subscribed = new Set<Session>();

  const { service, lifecycle, registry, journal } = vms;
  const addresses = new GuestAddresses();
  journal.on('changed', (vm: VmInfo) => subscribed.forEach((s) => s.send('vm.changed', vm)));
  journal.on('removed', (vm) => subscribed.forEach((s) => s.send('vm.removed', vm)));
  journal.on('logged', (ev: EventRecord) => subscribed.forEach((s) => s.send('event.logged', ev)));
  journal.on('notify', (n) => subscribed.forEach((s) => s.send('notification', n)));
  onStats((at, vms, host) => subscribed.forEach((s) => s.send('stats', { at, vms, host })));
  snapshots.on('progress', (p) => subscribed.forEach((s) => s.send('snapshot.progress', p)));
  migration.onProgress((p) => subscribed.forEach((s) => s.send('migration.progress', p)));
  const serialViewers = new SerialViewers((vmId) => registry.serialLinkOf(vmId));
  registry.on('serialData', (vmId, data, offset) => serialViewers.data(vmId, data, offset));
  registry.on('serialClosed', (vmId) => serialViewers.closed(vmId));
  /** The live serial link of a running VM, or a conflict error. */
  const serialOf = (ref: string) => {
    const vm = service.get(ref);
    const link = registry.serialLinkOf(vm.id);
    if (!link || link.closed) throw new CorralError('conflict', `"${vm.name}" is not running`);
    return link;
  };

  return {
    ...accountHandlers,
    ...migration.handlers,
    ...haHandlers,
    'host.info': () => info(),
    'host.settings': (a) => settings.set(a),
    'host.resources': () => monitor.host(),
    'vm.stats': (a) => monitor.stats(service.get(a.vm).id, a.range),
    'pool.list': () => vms.pools.list(),
    'vm.addresses': (a) => {
      const vm = service.get(a.vm);
      if (!vm.booted) throw new CorralError('conflict', `"${vm.name}" is not running: a stopped guest has no addresses`);
      return addresses.of(vms.ctx.vms.get(vm.id)?.applied?.nics ?? vm.config.nics, agentSocket(vm.id));
    },
    'network.list': () => networkList(service.list(), vms.ctx.driver.defaultNicKind() === 'passt'),
    'pool.add': (a) => vms.pools.add(a.name, a.path, a.shared),
    'pool.remove': (a) => {
      vms.pools.remove(a.name);
      return { ok: true as const };
    },
    'pool.files': (a) => vms.pools.files(a.pool),
    'vm.resizeDisk': (a) => service.resizeDisk(a.vm, a.disk, a.size),
    'vm.share.list': (a) => vms.shares.list(a.vm),
    'vm.share.add': (a) => vms.shares.add(a),
    'vm.share.remove': (a) => vms.shares.remove(a),
    'vm.screenshot': async (a) => ({ png: (await consoles.screenshot(service.get(a.vm))).toString('base64') }),
    'console.ticket': (a) => {
      const vm = service.get(a.vm);
      if (!consoles.displaySocket(vm.id)) throw new CorralError('conflict', `"${vm.name}" is not running`);
      const ticket = tickets.issue(vm.id);
      return {
        ticket,
        vmId: vm.id,
        path: `/vnc?vm=${encodeURIComponent(vm.id)}&ticket=${encodeURIComponent(ticket)}`,
        base: consoleBase(),
      };
    },
    'terminal.open': (a, s) => {
      if (a.kind === 'host') {
        if (!info().features.hostShell) throw new CorralError('conflict', 'host shells are turned off on this host (setting "hostShell")');
        return terminals.open(hostShell(), a.cols, a.rows, s);
      }
      if (!a.vm) throw new CorralError('invalid-argument', 'invalid argument "vm": ssh needs a VM', 'vm', { reason: 'ssh needs a VM' });
      const vm = service.get(a.vm);
      if (vm.state !== 'running') throw new CorralError('conflict', `"${vm.name}" is not running`);
      // the forwards QEMU runs with: a pending one leads nowhere (or somewhere else)
      const fwd = vm.booted?.forwards.find((f) => f.proto === 'tcp' && f.guestPort === 22);
      if (!fwd)
        throw new CorralError('conflict', `"${vm.name}" has no port forward to guest port 22: add one (e.g. tcp:2222:22) to ssh into it`);
      const host = fwd.hostAddr === '0.0.0.0' ? '127.0.0.1' : fwd.hostAddr;
      return terminals.open(sshInto(vm.name, a.user, host, fwd.hostPort, `${vmDir(vm.id)}/known_hosts`), a.cols, a.rows, s);
    },
    'terminal.write': (a, s) => {
      terminals.write(a.id, Buffer.from(a.data, 'base64'), s);
      return { ok: true as const };
    },
    'terminal.resize': (a, s) => {
      terminals.resize(a.id, a.cols, a.rows, s);
      return { ok: true as const };
    },
    'terminal.close': (a, s) => {
      terminals.close(a.id, s);
      return { ok: true as const };
    },
    'monitor.exec': async (a) => {
      if (!info().features.monitor) throw new CorralError('conflict', 'the monitor console is turned off on this host (setting "monitor")');
      return { output: await consoles.monitor(service.get(a.vm), a.command) };
    },
    'snapshot.list': (a) => snapshots.list(a.vm),
    'snapshot.create': (a) => snapshots.create(a.vm, { name: a.name, description: a.description, memory: a.memory }),
    'snapshot.revert': (a) => snapshots.revert(a.vm, a.snapshot),
    'snapshot.delete': async (a) => {
      await snapshots.delete(a.vm, a.snapshot);
      return { ok: true as const };
    },
    'snapshot.schedule': (a) => scheduler.set(service.get(a.vm).id, a.schedule),
    'vm.list': () => service.list(),
    'vm.get': (a) => service.get(a.vm),
    'vm.create': (a) => service.create(a),
    'vm.update': (a) => service.update(a),
    'vm.start': (a) => lifecycle.start(a.vm),
    'vm.stop': (a) => lifecycle.stop(a.vm, a.timeoutSec),
    'vm.kill': (a) => lifecycle.kill(a.vm),
    'vm.reset': (a) => lifecycle.reset(a.vm),
    'vm.pause': (a) => lifecycle.pause(a.vm),
    'vm.resume': (a) => lifecycle.resume(a.vm),
    'vm.delete': async (a) => {
      await service.delete(a.vm, a.keepDisks);
      return { ok: true as const };
    },
    // progress goes to the caller only: the job is theirs
    'vm.clone': (a, s) =>
      portable.clone(a, (p) => s.send('job.progress', p), a.fromSnapshot ? snapshots.resolve(a.vm, a.fromSnapshot) : undefined),
    'vm.export': (a, s) => portable.export(a, (p) => s.send('job.progress', p)),
    'vm.import': (a, s) => portable.import(a, (p) => s.send('job.progress', p)),
    'job.cancel': (a) => {
      portable.cancel(a.job);
      return { ok: true as const };
    },
    'base.list': () => portable.bases(),
    'base.delete': (a) => {
      portable.deleteBase(a.path);
      return { ok: true as const };
    },
    'events.list': (a) => events.list(a.limit, a.vm === undefined ? undefined : service.get(a.vm).id),
    'events.subscribe': (_a, s) => {
      if (!subscribed.has(s)) {
        subscribed.add(s);
        s.onClose(() => subscribed.delete(s));
      }
      return { ok: true as const };
    },
    'serial.attach': (a, s) => {
      const vm = service.get(a.vm);
      serialOf(vm.id); // refuses when not running
      serialViewers.add(s, vm.id);
      return { ok: true as const };
    },
    'serial.detach': (a, s) => {
      serialViewers.remove(s, service.get(a.vm).id);
      return { ok: true as const };
    },
    'serial.write': (a) => {
      const data = Buffer.from(a.data, 'base64');
      if (data.length > 64 * 1024)
        throw new CorralError('invalid-argument', 'invalid argument "data": at most 64 KiB per write', 'data', {
          reason: 'at most 64 KiB per write',
        });
      serialOf(a.vm).write(data);
      return { ok: true as const };
    },
    'serial.log': (a) => {
      const vm = service.get(a.vm);
      const { data, size } = readSerialLog(serialLog(vm.id), a.tailBytes, registry.serialLinkOf(vm.id));
      return { data: data.toString('base64'), size };
    },
  };
}
