// Saving what the host gave us (a screenshot, a serial log) as a file, from the browser or the
// desktop app alike: a Blob and an <a download>.

/** A file name from a VM name and a suffix: no path separators or control characters. */
export function fileName(vmName: string, suffix: string, ext: string): string {
  const base =
    vmName
      // eslint-disable-next-line no-control-regex
      .replace(/[/\\:*?"<>|\u0000-\u001f\u007f]+/g, '_')
      .replace(/^\.+/, '')
      .trim() || 'vm';
  return `${base}-${suffix}.${ext}`;
}

/** Local time as 20250131-154502, for file names. */
export function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // the download has its own copy once started
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
