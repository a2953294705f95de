// The fencer process: `node main.js --dir DIR --pidfile DIR/fencer.pid`. Started detached by the
// host and found again by a restarted host (pidfile + start time + argv, like QEMU), it outlives
// the host on purpose: a host that died or froze still leaves HA QEMUs to kill in time. Plain
// Node with no native module; its only work is one timer and one socket, so its event loop is
// never busy when the deadline comes.
import fs from 'node:fs';
import net from 'node:net';
import { monotonicMs } from '../monotonic';
import { processStartTime } from '../../qemu/proc';
import { Fencer } from './fencer';
import { fencerFiles, parseMessage, type FenceRecord } from './protocol';
import { Watchdog } from './watchdog';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const dir = arg('--dir');
if (!dir) {
  process.stderr.write('usage: fencer --dir DIR --pidfile DIR/fencer.pid [--watchdog DEVICE --watchdog-sec N]\n');
  process.exit(2);
}
const files = fencerFiles(dir);
const st = fs.lstatSync(dir);
if (!st.isDirectory() || (st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
  process.stderr.write(`fencer: ${dir} must be a dir of ours with mode 0700\n`);
  process.exit(2);
}

const logFd = fs.openSync(files.log, 'a', 0o600);
const log = (line: string) => fs.writeSync(logFd, `${new Date().toISOString()} [${process.pid}] ${line}\n`);

const fencer = new Fencer({
  nowMs: monotonicMs,
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  startTime: processStartTime,
  kill: (pid) => process.kill(pid, 'SIGKILL'),
  record(rec: FenceRecord) {
    // written whole then renamed: the host never reads half a record
    fs.writeFileSync(`${files.record}.tmp`, JSON.stringify(rec, null, 2), { mode: 0o600 });
    fs.renameSync(`${files.record}.tmp`, files.record);
  },
  clearRecord: () => fs.rmSync(files.record, { force: true }),
  previous() {
    try {
      return JSON.parse(fs.readFileSync(files.record, 'utf8')) as FenceRecord;
    } catch {
      return null; // none (or unreadable: the new fence stands alone)
    }
  },
  log,
});

const device = arg('--watchdog');
const watchdog = device ? new Watchdog(device, Number(arg('--watchdog-sec') ?? 10), fencer, monotonicMs, log) : null;

fs.rmSync(files.socket, { force: true });
const server = net.createServer((conn) => {
  let buf = '';
  conn.setEncoding('utf8');
  conn.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > 1 << 20) return conn.destroy(); // no line is this long
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const msg = parseMessage(line);
      if (msg) fencer.handle(msg);
      else log(`ignored a malformed message: ${line.slice(0, 200)}`);
    }
  });
  conn.on('error', () => undefined);
});
const oldMask = process.umask(0o177);
server.listen(files.socket, () => {
  process.umask(oldMask);
  fs.writeFileSync(files.pidFile, `${process.pid}\n`, { mode: 0o600 });
  log(`fencer up (pid ${process.pid})${watchdog ? `, watchdog ${device}` : ''}`);
});

process.on('SIGHUP', () => undefined);
// a stop is honoured only while nothing is guarded: an armed fencer is the guests' last safety
process.on('SIGTERM', () => {
  if (fencer.armed) return log('SIGTERM ignored: armed (disarm first, or SIGKILL)');
  log('fencer down');
  watchdog?.close();
  server.close();
  fs.rmSync(files.pidFile, { force: true });
  process.exit(0);
});
