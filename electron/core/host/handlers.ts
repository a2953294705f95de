// The API's handlers: each contract method mapped onto the VM manager, plus per-connection
// subscriptions (events, serial consoles) that end with the connection.
import { CorralError, type Handlers, type Session } from '../api/dispatcher.js';
import type { EventRecord, HostInfo, VmInfo } from '../api/contract.js';
import { readTail } from '../consoles/serial.js';
import type { EventRepo } from '../store/event-repo.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import type { VmManager } from '../supervisor/vm-manager.js';

export function makeHandlers(manager: VmManager, events: EventRepo, settings: SettingsRepo, info: () => HostInfo): Handlers {
  // per session: which event streams it asked for
  const subscribed = new Set<Session>();
  const serialSubs = new Map<Session, Set<string>>();

  manager.on('changed', (vm: VmInfo) => subscribed.forEach((s) => s.send('vm.changed', vm)));
  manager.on('removed', (vm) => subscribed.forEach((s) => s.send('vm.removed', vm)));
  manager.on('logged', (ev: EventRecord) => subscribed.forEach((s) => s.send('event.logged', ev)));
  manager.on('notify', (n) => subscribed.forEach((s) => s.send('notification', n)));
  manager.on('serialData', (vmId, data) => {
    let b64: string | null = null;
    for (const [s, subs] of serialSubs) {
      if (subs.has(vmId)) s.send('serial.data', { vmId, data: (b64 ??= data.toString('base64')) });
    }
  });
  manager.on('serialClosed', (vmId) => {
    for (const [s, subs] of serialSubs) if (subs.has(vmId)) s.send('serial.closed', { vmId });
  });

  function serialSet(s: Session): Set<string> {
    let m = serialSubs.get(s);
    if (!m) {
      serialSubs.set(s, (m = new Set()));
      s.onClose(() => serialSubs.delete(s));
    }
    return m;
  }

  return {
    'host.info': () => info(),
    'host.settings': (a) => settings.set(a),
    'vm.list': () => manager.list(),
    'vm.get': (a) => manager.get(a.vm),
    'vm.create': (a) => manager.create(a),
    'vm.update': (a) => manager.update(a),
    'vm.start': (a) => manager.start(a.vm),
    'vm.stop': (a) => manager.stop(a.vm, a.timeoutSec),
    'vm.kill': (a) => manager.kill(a.vm),
    'vm.reset': (a) => manager.reset(a.vm),
    'vm.pause': (a) => manager.pause(a.vm),
    'vm.resume': (a) => manager.resume(a.vm),
    'vm.delete': async (a) => {
      await manager.delete(a.vm, a.keepDisks);
      return { ok: true as const };
    },
    'events.list': (a) => events.list(a.limit, a.vm === undefined ? undefined : manager.get(a.vm).id),
    'events.subscribe': (_a, s) => {
      if (!subscribed.has(s)) {
        subscribed.add(s);
        s.onClose(() => subscribed.delete(s));
      }
      return { ok: true as const };
    },
    'serial.attach': (a, s) => {
      const vm = manager.get(a.vm);
      manager.serialOf(vm.id); // refuses when not running
      serialSet(s).add(vm.id);
      return { ok: true as const };
    },
    'serial.detach': (a, s) => {
      serialSubs.get(s)?.delete(manager.get(a.vm).id);
      return { ok: true as const };
    },
    'serial.write': (a) => {
      const data = Buffer.from(a.data, 'base64');
      if (data.length > 64 * 1024) throw new CorralError('invalid-argument', 'invalid argument "data": at most 64 KiB per write', 'data');
      manager.serialOf(a.vm).write(data);
      return { ok: true as const };
    },
    'serial.log': (a) => {
      const vm = manager.get(a.vm);
      const { data, size } = readTail(manager.filesOf(vm.id).serialLog, a.tailBytes);
      return { data: data.toString('base64'), size };
    },
  };
}
