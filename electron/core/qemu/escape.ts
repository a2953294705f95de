// QEMU's legacy "key=value,key=value" option syntax: a comma inside a value is written ",,".
// Nothing else needs quoting because argv never passes through a shell.

export function optValue(value: string): string {
  if (value.includes('\0')) throw new Error('option value contains NUL');
  return value.replaceAll(',', ',,');
}

/** Builds "first,key=value,..." with every value escaped; undefined values are left out. */
export function opts(first: string, kv: Record<string, string | number | boolean | undefined>): string {
  const parts = [first];
  for (const [k, v] of Object.entries(kv)) {
    if (v === undefined) continue;
    const s = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
    parts.push(`${k}=${optValue(s)}`);
  }
  return parts.join(',');
}

/** JSON syntax for -device / -blockdev: no escaping rules to get wrong. */
export function json(value: Record<string, unknown>): string {
  return JSON.stringify(value);
}
