// The last line of defence of a long-running host: an error nothing else caught is logged and
// the host keeps serving. Exiting would leave a stale lock and socket while guests run
// unsupervised, which is worse than whatever state one failed request left behind. Installed
// only once start-up is done: an error while starting should still stop the process.

/** Reports beyond this many a second are counted, not logged: a log that itself fails must not spin. */
const MAX_REPORTS_PER_SECOND = 10;

export function keepServingOnErrors(log: (line: string) => void): () => void {
  let second = 0;
  let reported = 0;
  let suppressed = 0;
  const report = (what: string) => (err: unknown) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      second = now;
      reported = 0;
    }
    if (++reported > MAX_REPORTS_PER_SECOND) {
      suppressed++;
      return;
    }
    try {
      const text = err instanceof Error ? (err.stack ?? err.message) : safeString(err);
      log(`${what} (kept serving): ${text}${suppressed ? ` [${suppressed} earlier reports not shown]` : ''}`);
      suppressed = 0;
    } catch {
      // nowhere to report to
    }
  };
  const onException = report('uncaught exception');
  const onRejection = report('unhandled rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return 'a value that cannot be shown';
  }
}
