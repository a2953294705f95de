// The owner's side of a console opened by another host of the cluster: after the peer API's
// upgrade (mutual TLS, the calling host admitted), the socket carries this VM's display raw, or
// its serial output as frames. The serial side is a session of the local fan-out like any
// other, whose backlog is the socket's: a caller that reads slowly is skipped and caught up,
// never buffered for without bound. The caller's user was checked on the caller's host.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { CorralError, Session, type Dispatcher } from '../api/dispatcher.js';
import type { EventMap } from '../api/contract.js';
import type { PeerStreamOpen } from '../cluster/index.js';
import type { MachineConsoles } from '../consoles/machine-consoles.js';
import { encodeFrame, type SerialFrame } from '../consoles/relay/frames.js';
import type { Vms } from '../vms/index.js';

export interface PeerConsolesDeps {
  vms: Vms;
  consoles: MachineConsoles;
  dispatcher: () => Dispatcher;
}

export function peerConsoles(d: PeerConsolesDeps): PeerStreamOpen {
  return (caller, address, kind, vmId) => {
    const vm = d.vms.service.get(vmId);
    if (kind === 'vnc') {
      const path = d.consoles.displaySocket(vm.id);
      if (!path) throw new CorralError('conflict', `"${vm.name}" is not running`);
      return (socket) => pipeDisplay(socket, path);
    }
    const link = d.vms.registry.serialLinkOf(vm.id);
    if (!link || link.closed) throw new CorralError('conflict', `"${vm.name}" is not running`);
    return (socket) => {
      const write = (f: SerialFrame) => {
        if (!socket.destroyed && socket.writable) socket.write(encodeFrame(f));
      };
      const close = (reason: string) => {
        write({ t: 'closed', reason });
        socket.end();
      };
      const s = new Session(
        `console of host ${caller}`,
        (event, payload) => {
          if (event === 'serial.data') {
            const p = payload as EventMap['serial.data'];
            if (p.vmId === vm.id) write({ t: 'data', data: p.data, offset: p.offset });
          } else if (event === 'serial.closed') {
            // a VM that ends as migrated runs elsewhere now; the caller finds where
            close(d.vms.registry.get(vm.id)?.requested === 'migrated' ? 'the VM moved to another host' : 'the VM stopped');
          }
        },
        () => socket.writableLength,
        { identity: { kind: 'host', user: `host:${caller}`, role: 'admin' }, address },
      );
      socket.on('close', () => s.close());
      socket.resume(); // nothing is read from the caller: its keystrokes are serial.write calls
      void d
        .dispatcher()
        .handle(s, { id: 1, method: 'serial.attach', args: { vm: vm.id } })
        .then((r) => {
          if ('error' in r) close(r.error.message);
        });
    };
  };
}

/** The display's bytes both ways; pipe() pauses whichever side is ahead. */
function pipeDisplay(socket: Duplex, path: string): void {
  const vnc = net.createConnection(path);
  socket.pipe(vnc);
  vnc.pipe(socket);
  vnc.on('error', () => socket.destroy());
  socket.on('error', () => vnc.destroy());
  socket.on('close', () => vnc.destroy());
}
