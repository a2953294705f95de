// Who may call what: the role each method needs, and which calls go to the audit log. The
// dispatcher enforces it for every transport; the page imports the same table to hide or
// disable what the user's role cannot do, so its predictions are the host's decisions.
import type { ArgsIn, EventName, MethodName } from './contract.js';
import type { Role } from './account-schemas.js';

export type { Role };

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

export interface Access {
  /** The least role that may make this call. */
  role: Role;
  /** Written to the audit log (every call that changes something; not each keystroke of a console). */
  audit: boolean;
}

const read = (role: Role = 'viewer'): Access => ({ role, audit: false });
const change = (role: Role): Access => ({ role, audit: true });

/** Every method of the contract: a new method cannot be added without saying who may call it. */
export const ACCESS: Record<MethodName, Access> = {
  'host.info': read(),
  'host.settings': change('admin'),
  'host.resources': read(),
  'vm.stats': read(),
  'vm.resizeDisk': change('operator'),
  // a shared folder opens a host path of the caller's choosing to a guest: an admin's call,
  // like choosing pools; taking one away narrows access and is an operator's
  'vm.share.list': read(),
  'vm.share.add': change('admin'),
  'vm.share.remove': change('operator'),
  'vm.list': read(),
  'vm.get': read(),
  'vm.create': change('operator'),
  'vm.update': change('operator'),
  'vm.start': change('operator'),
  'vm.stop': change('operator'),
  'vm.kill': change('operator'),
  'vm.reset': change('operator'),
  'vm.pause': change('operator'),
  'vm.resume': change('operator'),
  'vm.delete': change('operator'),
  'vm.clone': change('operator'),
  'vm.export': change('operator'),
  'vm.import': change('operator'),
  'job.cancel': change('operator'),
  'base.list': read(),
  'base.delete': change('operator'),
  'events.list': read(),
  'events.subscribe': read(),
  // a viewer may watch a serial console; typing into it takes an operator
  'serial.attach': read(),
  'serial.detach': read(),
  'serial.write': read('operator'),
  'serial.log': read(),
  'vm.screenshot': read(),
  // the graphical console takes keyboard and mouse input
  'console.ticket': change('operator'),
  // ssh into a guest; a host shell takes an admin (see roleFor)
  'terminal.open': change('operator'),
  'terminal.write': read('operator'),
  'terminal.resize': read('operator'),
  'terminal.close': read('operator'),
  'monitor.exec': change('operator'),
  'auth.whoami': read(),
  'user.list': read('admin'),
  'user.add': change('admin'),
  'user.remove': change('admin'),
  'user.passwd': change('admin'),
  'token.create': change('admin'),
  'token.list': read('admin'),
  'token.revoke': change('admin'),
  'audit.list': read('admin'),
  'ha.status': read(),
  // a dry run moves nothing, but turning balancing on lets the cluster move guests: an admin's call
  'ha.balance': change('admin'),
  // the files an operator may pick for a VM; which directories are pools is an admin's call
  'pool.list': read(),
  'network.list': read(),
  'vm.addresses': read(),
  'pool.files': read(),
  'pool.add': change('admin'),
  'pool.remove': change('admin'),
  'snapshot.list': read(),
  'snapshot.create': change('operator'),
  'snapshot.revert': change('operator'),
  'snapshot.delete': change('operator'),
  'snapshot.schedule': change('operator'),
  'cluster.init': change('admin'),
  'cluster.join': change('admin'),
  'cluster.token': change('admin'),
  'cluster.leave': change('admin'),
  'cluster.status': read(),
  // moving a VM to another host hands it a token of that host; the target side creates and runs VMs for a peer
  'vm.migrate': change('admin'),
  'vm.migrateCancel': change('operator'),
  'migration.prepareIncoming': change('admin'),
  'migration.finishIncoming': change('admin'),
  'migration.abortIncoming': change('admin'),
  // a keep-alive every few seconds during a move: not one audit line each
  'migration.touchIncoming': read('admin'),
  'host.evacuate': change('admin'),
  'host.restore': change('admin'),
  'vm.moveTargets': read(),
  'migration.checkIncoming': read('admin'),
  'vm.haBlocker': read(),
};

/** Events go only to roles that could have asked for what they carry. */
export const EVENT_ROLES: Record<EventName, Role> = {
  'vm.changed': 'viewer',
  'vm.removed': 'viewer',
  'event.logged': 'viewer',
  'serial.data': 'viewer',
  'serial.closed': 'viewer',
  'terminal.data': 'operator',
  'terminal.exit': 'operator',
  stats: 'viewer',
  notification: 'viewer',
  'snapshot.progress': 'viewer',
  'job.progress': 'operator',
  'migration.progress': 'viewer',
  'host.evacuation': 'viewer',
};

export function atLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The role a call needs, where its arguments raise it above the method's own. */
export function roleFor<M extends MethodName>(method: M, args?: Partial<ArgsIn<M>>): Role {
  if (method === 'terminal.open' && (args as ArgsIn<'terminal.open'> | undefined)?.kind === 'host') return 'admin';
  // a forward beyond loopback or below port 1024 opens the host to the network
  if (method === 'vm.create' || method === 'vm.update') {
    const a = args as ArgsIn<'vm.update'> | undefined;
    if (a?.forwards?.some((f) => f.exposed)) return 'admin';
    // so does a NIC on a host bridge: the guest stands on the host's LAN
    if (a?.nics?.some((n) => n.kind === 'bridge' || n.forwards?.some((f) => f.exposed))) return 'admin';
  }
  if (method === 'vm.create' && ((args as ArgsIn<'vm.create'> | undefined)?.shares?.length ?? 0) > 0) return 'admin';
  return ACCESS[method].role;
}

export function may<M extends MethodName>(role: Role, method: M, args?: Partial<ArgsIn<M>>): boolean {
  return atLeast(role, roleFor(method, args));
}

/** Why a role may not make a call: the tooltip on what the page disables, and the host's error. */
export function forbiddenWhy<M extends MethodName>(role: Role, method: M, args?: Partial<ArgsIn<M>>): string | null {
  if (may(role, method, args)) return null;
  const need = roleFor(method, args);
  return `needs the ${need} role (you are ${role === 'admin' || role === 'operator' ? 'an' : 'a'} ${role})`;
}
