// Exactly one host (desktop app or `corral serve`) owns a data dir. The lock file records
// pid + process start time, so a lock left by a crashed host is recognised as stale.
import fs from 'node:fs';
import { processStartTime } from '../qemu/proc.js';

export interface LockOwner {
  pid: number;
  start: string | null;
  kind: string;
}

export class DataDirLocked extends Error {}

export function acquireLock(file: string, kind: string): () => void {
  const me: LockOwner = { pid: process.pid, start: processStartTime(process.pid), kind };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, JSON.stringify(me));
      fs.closeSync(fd);
      return () => {
        const cur = readOwner(file);
        if (cur?.pid === me.pid) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readOwner(file);
    if (
      owner &&
      owner.pid !== process.pid &&
      processStartTime(owner.pid) !== null &&
      (!owner.start || processStartTime(owner.pid) === owner.start)
    ) {
      throw new DataDirLocked(
        `another Corral host (${owner.kind}, pid ${owner.pid}) already manages ${file.replace(/\/host\.lock$/, '')}; ` +
          'use it (the CLI talks to it), stop it first, or pick another data dir with --data',
      );
    }
    if (!owner) {
      // being written right now by a racing host, or garbage: give a racer a moment, then take over
      const age = Date.now() - statMtime(file);
      if (age < 2000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        continue;
      }
    }
    fs.rmSync(file, { force: true }); // stale: its host is gone
  }
  throw new DataDirLocked(`could not take the lock ${file}`);
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(o.pid) ? o : null;
  } catch {
    return null;
  }
}

function statMtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
