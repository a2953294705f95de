// The evidence kept with every crash: exit status, the last QMP events, and the tails of the
// serial log and of QEMU's own output.
import type { CrashReport, ExitReason } from '../api/contract.js';
import { readTail } from '../consoles/serial.js';
import type { QmpEvent } from '../qemu/qmp.js';

const SERIAL_TAIL = 4096;
const QEMU_TAIL = 2048;

export function crashReport(opts: {
  reason: ExitReason;
  code: number | null;
  signal: string | null;
  events: QmpEvent[];
  serialLog: string;
  qemuLog: string;
  /** Size of qemu.log when this run started: only this run's lines are reported. */
  qemuLogStart: number;
}): CrashReport {
  const qemu = readTail(opts.qemuLog, QEMU_TAIL);
  const fromRun = qemu.data.subarray(Math.max(0, opts.qemuLogStart - (qemu.size - qemu.data.length)));
  return {
    code: opts.code,
    signal: opts.signal,
    reason: opts.reason,
    qmpEvents: opts.events.slice(-10).map((e) => ({
      event: e.event,
      at: e.timestamp ? e.timestamp.seconds * 1000 + Math.round(e.timestamp.microseconds / 1000) : null,
      data: e.data ?? null,
    })),
    serialTail: printable(readTail(opts.serialLog, SERIAL_TAIL).data),
    qemuLog: printable(fromRun),
  };
}

/** Text safe to show anywhere: escape sequences and other control bytes removed. */
function printable(buf: Buffer): string {
  return (
    buf
      .toString('utf8')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
}
