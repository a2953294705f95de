import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { findUefi, matches } from '../../electron/core/qemu/firmware';
import { hardwareProblem } from '../../electron/core/qemu/hardware';
import { parseCpuHelp, parseMachineHelp } from '../../electron/core/qemu/probe';
import { tempDir } from '../helpers';

const dir = tempDir('corral-fw-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A descriptor as Debian's ovmf ships them, with files that exist. */
function descriptor(name: string, features: string[], machines = ['pc-q35-*']) {
  const code = path.join(dir, `${name}.code.fd`);
  const vars = path.join(dir, `${name}.vars.fd`);
  fs.writeFileSync(code, '');
  fs.writeFileSync(vars, '');
  return {
    'interface-types': ['uefi'],
    mapping: { device: 'flash', executable: { filename: code, format: 'raw' }, 'nvram-template': { filename: vars, format: 'raw' } },
    targets: [{ architecture: 'x86_64', machines }],
    features,
  };
}

describe('OVMF from QEMU firmware descriptors', () => {
  const descDir = path.join(dir, 'firmware');
  fs.mkdirSync(descDir);
  const write = (file: string, d: object) => fs.writeFileSync(path.join(descDir, file), JSON.stringify(d));
  write('40-secure-enrolled.json', descriptor('ms', ['acpi-s3', 'amd-sev', 'enrolled-keys', 'requires-smm', 'secure-boot']));
  write('50-secure.json', descriptor('sb', ['acpi-s3', 'requires-smm', 'secure-boot']));
  write('60-plain.json', descriptor('plain', ['acpi-s3', 'amd-sev']));
  write('10-sev-es.json', descriptor('sev', ['amd-sev-es']));
  write('20-broken.json', { nonsense: true });

  it('picks the plain build for uefi and the enrolled secure build for uefi-secure', () => {
    expect(findUefi('uefi', [descDir])).toEqual({
      code: path.join(dir, 'plain.code.fd'),
      varsTemplate: path.join(dir, 'plain.vars.fd'),
      secure: false,
    });
    expect(findUefi('uefi-secure', [descDir])).toMatchObject({ code: path.join(dir, 'ms.code.fd'), secure: true });
  });

  it('skips builds for other machines, confidential guests and stateless firmware', () => {
    expect(matches(descriptor('i440', [], ['pc-i440fx-*']), 'uefi')).toBeNull();
    expect(matches(descriptor('tdx', ['intel-tdx']), 'uefi')).toBeNull();
    const stateless = descriptor('sl', []);
    expect(matches({ ...stateless, mapping: { ...stateless.mapping, mode: 'stateless' } }, 'uefi')).toBeNull();
    // secure boot without Microsoft's keys is not what uefi-secure promises
    expect(matches(descriptor('sb2', ['requires-smm', 'secure-boot']), 'uefi-secure')).toBeNull();
  });
});

describe('pinned virtual hardware', () => {
  const host = {
    version: '7.2.0',
    accel: 'tcg' as const,
    machineTypes: ['pc-q35-7.2', 'pc-q35-7.1', 'pc-i440fx-7.2'],
    q35: 'pc-q35-7.2',
    cpuModels: ['Westmere-v1', 'qemu64', 'host', 'max'],
  };
  const c = { ...CONFIG_DEFAULTS, machineType: 'pc-q35-7.2' };

  it('accepts what the host has', () => expect(hardwareProblem(c, host)).toBeNull());

  it('refuses a machine type the QEMU lacks, naming it', () => {
    expect(hardwareProblem({ ...c, machineType: 'pc-q35-9.1' }, host)).toMatch(
      /pinned to the machine type pc-q35-9\.1, which QEMU 7\.2\.0 on this host lacks \(it has pc-q35-7\.2, pc-q35-7\.1\)/,
    );
  });

  it('refuses host passthrough without KVM, and unknown CPU models', () => {
    expect(hardwareProblem({ ...c, cpuModel: 'host' }, host)).toMatch(/needs KVM/);
    expect(hardwareProblem({ ...c, cpuModel: 'host' }, { ...host, accel: 'kvm' })).toBeNull();
    expect(hardwareProblem({ ...c, cpuModel: 'EPYC-v9' }, host)).toMatch(/CPU model EPYC-v9 is unknown to QEMU 7\.2\.0/);
  });

  it('reads the machine types, the q35 alias and the CPU models from QEMU', () => {
    const m = parseMachineHelp(
      'Supported machines are:\nmicrovm              microvm (i386)\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\npc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\nnone                 empty machine\n',
    );
    expect(m).toEqual({ types: ['microvm', 'pc-q35-7.2', 'none'], aliases: { q35: 'pc-q35-7.2' } });
    expect(
      parseCpuHelp(
        'Available CPUs:\nx86 486                   (alias configured by machine type)\nx86 Westmere-v1           Westmere E56xx\n\nRecognized CPUID flags:\n  3dnow\n',
      ),
    ).toEqual(['486', 'Westmere-v1']);
  });
});
