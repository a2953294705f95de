// The floor of a parallel start: bare QEMUs with the VMs' own argv, spawned at once, each let
// run (`cont`) as soon as it answers its first command, the way QEMU without -S would run its
// guest once the machine is built. All of them run until the last one does: guests that boot
// early take CPU from the QEMUs still building their machines, as they do at a host start.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Sends the lines in turn, each once the answer to the one before came; false if the socket failed. */
function converse(socket: string, lines: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    let buf = '';
    let sent = 0;
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      // the greeting first, then one "return" per command
      const answers = buf.split('\n').filter((l) => l.includes('"return"')).length;
      if (sent === 0 || answers === sent) {
        if (sent === lines.length) {
          s.destroy();
          resolve(true);
          return;
        }
        s.write(`${lines[sent++]}\n`);
      }
    });
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
  });
}

/**
 * Resolves with the ms from t0 until QEMU's guest runs. Waits for the QMP socket the way the
 * host does (a watch of its dir, not a busy poll that would take CPU from the QEMUs).
 */
async function bareRunning(child: ChildProcess, qmpSocket: string, t0: number): Promise<number> {
  let wake = () => {};
  const watcher = fs.watch(path.dirname(qmpSocket), () => wake());
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`bare QEMU exited before it ran (${child.exitCode ?? child.signalCode})`);
      if (fs.existsSync(qmpSocket) && (await converse(qmpSocket, ['{"execute":"qmp_capabilities"}', '{"execute":"cont"}'])))
        return performance.now() - t0;
      // bound but not listening yet, or not there: the next change of the dir, or a moment
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, fs.existsSync(qmpSocket) ? 2 : 25);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    watcher.close();
  }
}

/** ms from the first spawn until every one of these bare QEMUs runs its guest. */
export async function bareParallelStart(bares: Array<{ argv: string[]; files: { qmpSocket: string; runDir: string } }>): Promise<number> {
  for (const { files } of bares) {
    fs.mkdirSync(files.runDir, { recursive: true });
    fs.rmSync(files.qmpSocket, { force: true });
  }
  const t0 = performance.now();
  // each in a session of its own, as the host starts QEMU: with the kernel's autogroups, a
  // session is a scheduling group, so ten QEMUs in the bench's one would share one group's CPU
  const children = bares.map(({ argv }) => spawn('qemu-system-x86_64', argv, { stdio: 'ignore', detached: true }));
  const exits = children.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  try {
    const times = await Promise.all(children.map((c, i) => bareRunning(c, bares[i]!.files.qmpSocket, t0)));
    return Math.max(...times);
  } finally {
    children.forEach((c) => c.kill('SIGKILL'));
    await Promise.all(exits);
  }
}
