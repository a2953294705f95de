// Shared by the benchmark modules: a row of the printed table and small statistics.
export interface Row {
  name: string;
  value: string;
  floor: string;
  target: string;
  /** null: a figure without a target */
  ok: boolean | null;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const ms = (x: number) => `${x.toFixed(1)} ms`;

export function printTable(rows: Row[]): void {
  const cols = ['benchmark', 'measured', 'floor', 'target', 'result'];
  const table = [cols, ...rows.map((r) => [r.name, r.value, r.floor, r.target, r.ok === null ? '-' : r.ok ? 'PASS' : 'MISS'])];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const [i, r] of table.entries()) {
    console.log(r.map((c, j) => c.padEnd(widths[j]!)).join(' | '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  }
}
