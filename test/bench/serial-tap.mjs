// The tap of serial-tap-qemu.sh: listens on the serial socket path the host connects to, and
// relays between the host and QEMU's real socket (path + ".qemu"). A control socket
// (path + ".ctl") takes "flood N": N bytes of 80-column lines and a marker line, written to
// the host as fast as it reads them; the tap answers "done" when all were handed over.
import fs from 'node:fs';
import net from 'node:net';

const path = process.argv[2];
const MARKER = '\r\nTPUT-2-END\r\n';
let host = null;
let qemu = null;

function connectQemu() {
  return new Promise((resolve) => {
    const attempt = () => {
      const s = net.createConnection(`${path}.qemu`);
      s.once('connect', () => resolve(s));
      s.once('error', () => setTimeout(attempt, 10));
    };
    attempt();
  });
}

async function flood(bytes) {
  const line = Buffer.from(`${'0123456789abcdefghij'.repeat(4).slice(0, 78)}\r\n`);
  const chunk = Buffer.alloc(64 * 1024);
  for (let o = 0; o < chunk.length; o += line.length) line.copy(chunk, o);
  qemu.unpipe(host);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!host.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise((r) => host.once('drain', r));
  }
  host.write(MARKER);
  qemu.pipe(host);
}

fs.rmSync(path, { force: true });
net
  .createServer(async (c) => {
    host = c;
    qemu = await connectQemu();
    host.pipe(qemu);
    qemu.pipe(host);
    qemu.on('close', () => process.exit(0));
    host.on('close', () => process.exit(0));
  })
  .listen(path);

fs.rmSync(`${path}.ctl`, { force: true });
net
  .createServer((c) => {
    c.on('data', async (d) => {
      const m = /^flood (\d+)/.exec(d.toString());
      if (!m || !host || !qemu) return c.end('error: not connected\n');
      await flood(Number(m[1]));
      c.end('done\n');
    });
  })
  .listen(`${path}.ctl`);
