// Human sizes ("512M", "2G", "20GiB") <-> bytes. Shared by the CLI, the UI and the core,
// so that every surface accepts and prints the same spellings.

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses a size; a bare number means `defaultUnit` (CLI: "--memory 512" is 512 MiB). */
export function parseSize(text: string, defaultUnit: 'b' | 'm' = 'b'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) throw new Error(`not a size: "${text}" (use e.g. 512M, 2G)`);
  const unit = (m[2] || defaultUnit).toLowerCase();
  const mult = UNITS[unit];
  if (mult === undefined) throw new Error(`unknown size unit "${m[2]}" in "${text}" (use K, M, G or T)`);
  const bytes = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) throw new Error(`size too large: "${text}"`);
  return bytes;
}

export function formatSize(bytes: number): string {
  const steps = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < steps.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${steps[i]}`;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
