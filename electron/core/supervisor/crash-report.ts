// The evidence kept with every crash: exit status, the last QMP events, and the tails of the
// serial log and of QEMU's own output.
import type { CrashReport, ExitReason } from '../api/contract.js';
import type { CrashLogs } from '../qemu/driver.js';
import type { QmpEvent } from '../qemu/qmp.js';

export function crashReport(opts: {
  reason: ExitReason;
  code: number | null;
  signal: string | null;
  events: QmpEvent[];
  logs: CrashLogs;
}): CrashReport {
  return {
    code: opts.code,
    signal: opts.signal,
    reason: opts.reason,
    qmpEvents: opts.events.slice(-10).map((e) => ({
      event: e.event,
      at: e.timestamp ? e.timestamp.seconds * 1000 + Math.round(e.timestamp.microseconds / 1000) : null,
      data: e.data ?? null,
    })),
    serialTail: printable(opts.logs.serialTail),
    qemuLog: printable(opts.logs.qemuLog),
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
