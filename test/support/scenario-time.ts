// Times in scenario files: 1m30s, 2s500ms, 0s (minutes, seconds, milliseconds).

export function parseTime(text: string): number {
  const m = /^(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (!m || (m[1] ?? m[2] ?? m[3]) === undefined) throw new Error(`bad time ${JSON.stringify(text)}`);
  return Number(m[1] ?? 0) * 60_000 + Number(m[2] ?? 0) * 1000 + Number(m[3] ?? 0);
}

export function formatTime(ms: number): string {
  const [m, s, r] = [Math.floor(ms / 60_000), Math.floor((ms % 60_000) / 1000), ms % 1000];
  return (m ? `${m}m` : '') + (s ? `${s}s` : '') + (r ? `${r}ms` : '') || '0s';
}
