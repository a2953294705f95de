// The graphical console: QEMU's VNC server listens on a unix socket in the VM's run dir (never
// a TCP port); this bridges one ticketed WebSocket to it, bytes in both directions, for noVNC.
// A VM on another host of the cluster is reached through a relay, a stream to its owner.
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { requestUrl } from '../security.js';
import type { TicketBook } from './tickets.js';

export interface VncProxyDeps {
  tickets: TicketBook;
  /** The VNC socket of a running VM, or null. */
  socketOf: (vmId: string) => string | null;
  /** The relay to the display of a VM another host runs, or null. */
  relayOf?: (vmId: string) => VncRelay | null;
}

export interface VncRelay {
  /** The owner's display as a byte stream; rejects with why it cannot be opened. */
  open(): Promise<Duplex>;
  /** Why the console closed when the stream ended (the owner died, the VM stopped or moved). */
  ended(err: Error | null): string;
  /** Lets the relay end the console early, with a reason (e.g. the VM moved); returns an undo. */
  track(end: (reason: string) => void): () => void;
}

/** Over this much unsent data the guest socket is paused: a slow browser throttles QEMU, not our memory. */
const HIGH_WATER = 4 * 1024 * 1024;

export class VncProxy {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    perMessageDeflate: false,
    // noVNC asks for the "binary" subprotocol
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
  });

  constructor(private readonly d: VncProxyDeps) {}

  /** Handles an upgrade for /vnc?vm=ID&ticket=T (callers have checked Host and Origin). */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req.url);
    const vmId = url?.searchParams.get('vm') ?? null;
    if (!url || !this.d.tickets.redeem(url.searchParams.get('ticket'), vmId)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const path = this.d.socketOf(vmId!);
    const relay = path ? null : (this.d.relayOf?.(vmId!) ?? null);
    if (path) this.wss.handleUpgrade(req, socket, head, (ws) => this.bridge(ws, net.createConnection(path), () => 'console closed'));
    else if (relay) void this.viaRelay(req, socket, head, relay);
    else socket.end('HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }

  /** The owner's stream is opened before the browser's upgrade is answered: a refusal stays an HTTP status. */
  private async viaRelay(req: http.IncomingMessage, socket: Duplex, head: Buffer, relay: VncRelay): Promise<void> {
    let stream: Duplex;
    try {
      stream = await relay.open();
    } catch {
      socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (socket.destroyed) return void stream.destroy();
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const untrack = relay.track((reason) => {
        stream.destroy();
        ws.close(4000, closeReason(reason));
      });
      ws.on('close', untrack);
      this.bridge(ws, stream, (err) => relay.ended(err));
    });
  }

  /** Bytes both ways; each side that cannot keep up pauses the other, so nothing queues without bound. */
  private bridge(ws: WebSocket, vnc: Duplex, why: (err: Error | null) => string): void {
    vnc.on('data', (d: Buffer) => {
      ws.send(d, { binary: true });
      if (ws.bufferedAmount > HIGH_WATER) {
        vnc.pause();
        const drain = setInterval(() => {
          if (ws.bufferedAmount < HIGH_WATER / 4 || ws.readyState !== ws.OPEN) {
            clearInterval(drain);
            vnc.resume();
          }
        }, 10);
      }
    });
    ws.on('message', (d: Buffer) => {
      if (!vnc.write(d) && !ws.isPaused) {
        ws.pause();
        vnc.once('drain', () => ws.resume());
      }
    });
    let failure: Error | null = null;
    const end = () => {
      vnc.destroy();
      ws.terminate();
    };
    vnc.on('error', (err) => {
      failure = err;
      vnc.destroy();
    });
    vnc.on('close', () => {
      if (ws.readyState === ws.OPEN) ws.close(failure ? 4001 : 1000, closeReason(why(failure)));
    });
    ws.on('close', end);
    ws.on('error', end);
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}

/** A WebSocket close reason holds at most 123 bytes. */
export function closeReason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -2) + '…';
  return out;
}
