import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeQemu } from '../../electron/core/qemu/probe';
import { tempDir } from '../helpers';

const dir = tempDir('corral-probe-test-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stand-in QEMU that answers -version, -machine help and -cpu help, and counts its runs. */
function fakeQemu(version: string): { binary: string; runs: () => number } {
  const binary = path.join(dir, 'qemu-system-x86_64');
  const log = path.join(dir, 'runs');
  fs.writeFileSync(
    binary,
    `#!/bin/sh
echo "$@" >> '${log}'
case "$1" in
  -version) echo "QEMU emulator version ${version}" ;;
  -machine) printf 'Supported machines are:\\nq35                  Standard PC (alias of pc-q35-${version})\\npc-q35-${version}      Standard PC\\n' ;;
  -cpu) printf 'Available CPUs:\\nx86 Westmere-v1   Westmere\\n\\nRecognized CPUID flags:\\n' ;;
esac
`,
    { mode: 0o755 },
  );
  return { binary, runs: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').length : 0) };
}

describe('QEMU probe cache', () => {
  it('runs QEMU once per binary, and again when the binary changes', async () => {
    const cacheFile = path.join(dir, 'qemu-probe.json');
    const qemu = fakeQemu('7.2');
    const env = { CORRAL_QEMU: qemu.binary, CORRAL_ACCEL: 'tcg' };
    const first = await probeQemu({ env, cacheFile });
    expect(first).toMatchObject({ version: '7.2', q35: 'pc-q35-7.2', machineTypes: ['pc-q35-7.2'], cpuModels: ['Westmere-v1'] });
    expect(qemu.runs()).toBe(3);
    expect(await probeQemu({ env, cacheFile })).toEqual(first);
    expect(qemu.runs()).toBe(3); // from the cache
    // an upgrade replaces the binary
    fs.rmSync(qemu.binary);
    fakeQemu('8.0');
    const later = new Date(Date.now() + 10_000);
    fs.utimesSync(qemu.binary, later, later);
    expect(await probeQemu({ env, cacheFile })).toMatchObject({ version: '8.0', q35: 'pc-q35-8.0' });
    expect(qemu.runs()).toBe(6);
  });

  it('probes again when the cache file is damaged', async () => {
    const cacheFile = path.join(dir, 'damaged.json');
    fs.writeFileSync(cacheFile, '{"qemu": {"key": 1');
    const qemu = fakeQemu('7.2');
    const before = qemu.runs();
    expect((await probeQemu({ env: { CORRAL_QEMU: qemu.binary, CORRAL_ACCEL: 'tcg' }, cacheFile })).version).toBe('7.2');
    expect(qemu.runs()).toBe(before + 3);
  });
});
