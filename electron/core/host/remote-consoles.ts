// Consoles of VMs another host of the cluster runs, opened here as if the VM were local: the
// serial console (serial.attach/detach) and the display (console.ticket, then /vnc) go to the
// owner over the peer API's mutual TLS; screenshots, the monitor, serial.log and serial.write
// are plain calls and are forwarded like any action (forwarded-methods.ts). The caller's role
// is checked here by the dispatcher, as for a local VM. A console ends with a reason when its
// owner closes it, dies, stops reporting or the VM moves; opening it again finds the new owner.
import { CorralError, type Handlers, type Session } from '../api/dispatcher.js';
import { isRunning } from '../api/rules.js';
import type { Cluster, ClusterVm } from '../cluster/index.js';
import { SerialRelay } from '../consoles/relay/serial-relay.js';
import type { TicketBook } from '../consoles/tickets.js';
import type { VncRelay } from '../consoles/vnc-proxy.js';

export interface RemoteConsolesDeps {
  cluster: () => Cluster | null;
  /** Whether this host has the VM (by id or name). */
  isLocal: (ref: string) => boolean;
  tickets: TicketBook;
  consoleBase: () => string | null;
}

interface Open {
  vmId: string;
  host: { id: string; name: string };
  end: (reason: string) => void;
}

type HostRef = Open['host'];

export class RemoteConsoles {
  /** Every console open here to another host, to end when its VM moves or its host stops reporting. */
  private readonly open = new Set<Open>();
  private readonly serial = new Map<Session, Map<string, SerialRelay>>();
  private watched: Cluster | null = null;

  constructor(private readonly d: RemoteConsolesDeps) {}

  /** The handlers, with consoles of other hosts' VMs relayed. */
  wrap(h: Handlers): Handlers {
    const attach = h['serial.attach'];
    const detach = h['serial.detach'];
    const ticket = h['console.ticket'];
    const ok = { ok: true as const };
    return {
      ...h,
      'serial.attach': async (a, s) => {
        const r = this.remote(a.vm, s);
        if (!r) return await attach(a, s);
        let mine = this.serial.get(s);
        if (!mine) {
          this.serial.set(s, (mine = new Map()));
          s.onClose(() => this.serial.delete(s));
        }
        if (mine.has(r.vm.id)) return ok;
        const stream = await r.c.peers.stream(r.vm.host.id, 'serial', r.vm.id);
        if (s.closed || mine.has(r.vm.id)) {
          stream.destroy();
          return ok;
        }
        const host = { id: r.vm.host.id, name: r.vm.host.name };
        const entry: Open = { vmId: r.vm.id, host, end: (reason) => relay.end(reason) };
        const relay = new SerialRelay(s, r.vm.id, stream, {
          why: (said, err) => this.why(r.vm.id, host, said, err),
          done: () => {
            mine.delete(r.vm.id);
            this.open.delete(entry);
          },
        });
        mine.set(r.vm.id, relay);
        this.open.add(entry);
        return ok;
      },
      'serial.detach': async (a, s) => {
        const mine = this.serial.get(s);
        const id = mine?.has(a.vm) ? a.vm : this.d.cluster()?.inventory.find(a.vm)?.id;
        const relay = id ? mine?.get(id) : undefined;
        if (relay) {
          relay.close();
          return ok;
        }
        return await detach(a, s);
      },
      'console.ticket': async (a, s) => {
        const r = this.remote(a.vm, s);
        if (!r) return await ticket(a, s);
        if (!isRunning(r.vm.state)) throw new CorralError('conflict', `"${r.vm.name}" is not running`);
        const t = this.d.tickets.issue(r.vm.id);
        return {
          ticket: t,
          vmId: r.vm.id,
          path: `/vnc?vm=${encodeURIComponent(r.vm.id)}&ticket=${encodeURIComponent(t)}`,
          base: this.d.consoleBase(),
        };
      },
    };
  }

  /** The display of a VM another host runs, for the VNC proxy (its ticket was issued above). */
  relayOf(vmId: string): VncRelay | null {
    const c = this.d.cluster();
    const vm = c?.inventory.find(vmId);
    if (!c || !vm || vm.host.id === c.config.hostId || this.d.isLocal(vmId)) return null;
    const host = { id: vm.host.id, name: vm.host.name };
    return {
      open: () => c.peers.stream(host.id, 'vnc', vm.id),
      ended: (err) => this.why(vm.id, host, null, err),
      track: (end) => {
        const entry: Open = { vmId: vm.id, host, end };
        this.open.add(entry);
        return () => this.open.delete(entry);
      },
    };
  }

  /** The VM of another host that `ref` names, or null when it is here (or this host is alone). */
  private remote(ref: string, s: Session): { c: Cluster; vm: ClusterVm } | null {
    const c = this.d.cluster();
    // a host calling for one of its users was checked there, and is never relayed again
    if (!c || s.identity.kind === 'host' || this.d.isLocal(ref)) return null;
    const vm = c.inventory.find(ref);
    if (!vm || vm.host.id === c.config.hostId) return null;
    if (!vm.host.reporting) throw new CorralError('conflict', `"${vm.name}" is on host "${vm.host.name}", which is not reporting`);
    this.watch(c);
    return { c, vm };
  }

  /** Consoles of a VM that moved, or whose host stopped reporting, end now rather than hang. */
  private watch(c: Cluster): void {
    if (this.watched === c) return;
    this.watched = c;
    c.inventory.on('changed', (vm: ClusterVm) => {
      for (const o of [...this.open]) {
        if (o.vmId === vm.id && (vm.host.id !== o.host.id || !vm.host.reporting)) o.end(this.why(vm.id, o.host, null, null));
      }
    });
  }

  /** Why a console of a VM on `host` ended, in words for its user. */
  private why(vmId: string, host: HostRef, said: string | null, err: Error | null): string {
    const vm = this.d.cluster()?.inventory.find(vmId);
    const d = this.d;
    if (vm && vm.host.id !== host.id) return `the VM moved to host "${vm.host.name}": open the console again to follow it`;
    if (d.isLocal(vmId)) return 'the VM moved to this host: open the console again to follow it';
    if (said) return `on host "${host.name}": ${said}`;
    if (vm && !vm.host.reporting) return `host "${host.name}" is not reporting: its console closed`;
    if (err) return `the connection to host "${host.name}" broke (${err.message})`;
    return `host "${host.name}" closed the console (it stopped, or its VM did)`;
  }
}
