// One command to qemu-guest-agent over its virtio-serial socket: guest-sync first (a stale
// reply from an earlier client must not be taken for ours), then the command. Used to freeze
// the guest's file systems around a disk-only snapshot.
import net from 'node:net';

export function agentCommand<T = unknown>(socket: string, execute: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    const id = Math.floor(Math.random() * 2 ** 31);
    let buf = '';
    let synced = false;
    const done = (err: Error | null, value?: T) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(() => done(new Error(`the guest agent did not answer ${execute} within ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => s.write(JSON.stringify({ execute: 'guest-sync', arguments: { id } }) + '\n'));
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8').replace(/\xff/g, '');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let msg: { return?: unknown; error?: { desc?: string } };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        if (!synced) {
          if (msg.return === id) {
            synced = true;
            s.write(JSON.stringify({ execute }) + '\n');
          }
        } else if (msg.error) done(new Error(msg.error.desc ?? `${execute} failed`));
        else if (msg.return !== undefined) done(null, msg.return as T);
      }
    });
    s.once('error', (err) => done(err));
    s.once('close', () => done(new Error('the guest agent closed the connection')));
  });
}
