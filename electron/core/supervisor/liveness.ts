// Liveness probes for guests that opted in: the guest agent's guest-ping over virtio-serial,
// or a service on a forwarded port. Each probe answers true (alive) or false, never throws.
import http from 'node:http';
import net from 'node:net';
import type { Liveness, PortForward } from '../api/contract.js';

export type Probe = () => Promise<boolean>;

export function makeProbe(liveness: Liveness, forwards: PortForward[], agentSocket: string, timeoutMs: number): Probe {
  if (liveness.kind === 'agent') return () => agentPing(agentSocket, timeoutMs);
  const fwd = forwards.find((f) => f.proto === 'tcp' && f.guestPort === liveness.port);
  if (!fwd) throw new Error(`liveness probe on guest port ${liveness.port} needs a tcp port forward to it`);
  const host = fwd.hostAddr === '0.0.0.0' ? '127.0.0.1' : fwd.hostAddr;
  if (liveness.kind === 'tcp') return () => tcpBanner(host, fwd.hostPort, timeoutMs);
  return () => httpGet(host, fwd.hostPort, liveness.path, timeoutMs);
}

/**
 * QEMU's user-mode network accepts a forwarded connection before the guest does, so a mere
 * connect proves nothing: the service must send its first bytes (as SSH does).
 */
function tcpBanner(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('data', () => done(true));
    s.once('error', () => done(false));
    s.once('close', () => done(false));
  });
}

function httpGet(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: timeoutMs, headers: { 'user-agent': 'corral-liveness' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

/** guest-sync with a fresh id flushes any stale reply, then guest-ping must answer. */
function agentPing(socket: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    const id = Math.floor(Math.random() * 2 ** 31);
    let buf = '';
    let synced = false;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => s.write(JSON.stringify({ execute: 'guest-sync', arguments: { id } }) + '\n'));
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8').replace(/\xff/g, '');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let msg: { return?: unknown };
        try {
          msg = JSON.parse(line) as { return?: unknown };
        } catch {
          continue;
        }
        if (!synced && msg.return === id) {
          synced = true;
          s.write(JSON.stringify({ execute: 'guest-ping' }) + '\n');
        } else if (synced && msg.return !== undefined) done(true);
      }
    });
    s.once('error', () => done(false));
    s.once('close', () => done(false));
  });
}
