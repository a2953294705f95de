// The CLI's transport: newline-delimited JSON over a unix socket (0600, in the 0700 data dir).
import fs from 'node:fs';
import net from 'node:net';
import { badRequest, Session, type Dispatcher } from '../api/dispatcher.js';

const MAX_LINE = 4 * 1024 * 1024;

export async function listenControlSocket(file: string, dispatcher: Dispatcher): Promise<net.Server> {
  fs.rmSync(file, { force: true }); // only the lock holder gets here, so any socket left is stale
  const conns = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    serveConnection(sock, dispatcher);
  });
  // closing the host ends its clients too (server.close alone waits for them)
  const close = server.close.bind(server);
  server.close = (cb) => {
    conns.forEach((c) => c.destroy());
    return close(cb);
  };
  const oldMask = process.umask(0o177); // created 0600 from the start, no window for others
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(file, 0o600);
  return server;
}

function serveConnection(sock: net.Socket, dispatcher: Dispatcher): void {
  const write = (msg: unknown) => {
    if (!sock.destroyed) sock.write(JSON.stringify(msg) + '\n');
  };
  const session = new Session(
    'cli',
    (event, payload) => write({ event, payload }),
    () => sock.writableLength,
  );
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_LINE) {
      write(badRequest(0, 'message too large'));
      sock.destroy();
      return;
    }
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      dispatcher
        .handleText(session, line)
        .then(write)
        .catch(() => sock.destroy()); // an answer that cannot be written: drop this client, not the host
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', () => session.close());
}
