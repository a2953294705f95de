// The graphical console: QEMU's VNC server listens on a unix socket in the VM's run dir (never
// a TCP port); this bridges one ticketed WebSocket to it, bytes in both directions, for noVNC.
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
    if (!path) {
      socket.end('HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.bridge(ws, path));
  }

  private bridge(ws: WebSocket, path: string): void {
    const vnc = net.createConnection(path);
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
    ws.on('message', (d: Buffer) => vnc.write(d));
    const end = () => {
      vnc.destroy();
      ws.terminate();
    };
    vnc.on('error', end);
    vnc.on('close', () => ws.close(1000, 'console closed'));
    ws.on('close', end);
    ws.on('error', end);
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}
