// Process identity from /proc: a pid alone can be reused, pid + start time cannot.
import fs from 'node:fs';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Start time in clock ticks since boot (field 22 of /proc/PID/stat), or null if gone. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parens: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return null; // a zombie is already dead
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function processArgv(pid: number): string[] | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** True when `pid` is the same process that was recorded (start time) and is ours (argv holds our pidfile). */
export function isSameProcess(pid: number, startTime: string | null, pidFile: string): boolean {
  const now = processStartTime(pid);
  if (!now || (startTime && now !== startTime)) return false;
  const argv = processArgv(pid);
  return !!argv && argv.includes(pidFile);
}

export function readPidFile(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Bytes a process has written (`wchar`) or read (`rchar`) through read(2)/write(2) and friends
 * so far, from /proc/PID/io; null when /proc does not say.
 */
export function processIoBytes(pid: number, which: 'rchar' | 'wchar'): number | null {
  try {
    const m = new RegExp(`^${which}:\\s*(\\d+)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A process's resident memory in bytes (VmRSS of /proc/PID/status), or null. */
export function processResidentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s*(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
