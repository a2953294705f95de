// The tap of serial-tap-qemu.sh: listens on the serial socket path the host connects to, and
// relays between the host and QEMU's real socket (path + ".qemu"). A control socket
// (path + ".ctl") takes "flood N RATE TAG": N bytes of 80-column lines at RATE bytes per
// second (0: as fast as the host reads), then the line TPUT-TAG-END; it answers "done" when
// all were handed over.
import fs from 'node:fs';
import net from 'node:net';

const path = process.argv[2];
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

const TICK_MS = 10;

async function flood(bytes, rate, tag) {
  const line = Buffer.from(`${'0123456789abcdefghij'.repeat(4).slice(0, 78)}\r\n`);
  const size = rate ? Math.max(1, Math.round((rate * TICK_MS) / 1000)) : 64 * 1024;
  const chunk = Buffer.alloc(size + line.length);
  for (let o = 0; o < chunk.length; o += line.length) line.copy(chunk, o);
  qemu.unpipe(host);
  const t0 = performance.now();
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(size, bytes - sent);
    // lines stay whole across chunks: each chunk starts where the last one stopped
    const at = sent % line.length;
    if (!host.write(chunk.subarray(at, at + n))) await new Promise((r) => host.once('drain', r));
    sent += n;
    if (rate) {
      const due = t0 + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  host.write(`\r\nTPUT-${tag}-END\r\n`);
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
      const m = /^flood (\d+) (\d+) (\w+)/.exec(d.toString());
      if (!m || !host || !qemu) return c.end('error: not connected\n');
      await flood(Number(m[1]), Number(m[2]), m[3]);
      c.end('done\n');
    });
  })
  .listen(`${path}.ctl`);
