// cgroup v2 delegation on a directory tree shaped like cgroupfs (this machine has no delegated
// cgroup v2, so the real tree can only show the "unavailable" path, tested in integration).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cgroups } from '../../electron/core/resources/cgroups';
import { tempDir } from '../helpers';

function tree(controllers: string): { mount: string; own: string } {
  const mount = tempDir();
  const own = path.join(mount, 'user.slice', 'corral.scope');
  fs.mkdirSync(own, { recursive: true });
  fs.writeFileSync(path.join(mount, 'cgroup.controllers'), 'cpu io memory');
  fs.writeFileSync(path.join(own, 'cgroup.controllers'), controllers);
  fs.writeFileSync(path.join(own, 'cgroup.subtree_control'), '');
  return { mount, own };
}

describe('cgroups', () => {
  it('uses a delegated cgroup: Corral moves to a leaf, VMs get cpu.weight and cpu.max', () => {
    const { mount, own } = tree('cpu io');
    const cg = new Cgroups(mount, () => '0::/user.slice/corral.scope\n', 4242);
    expect(cg.init()).toEqual({ available: true, reason: null });
    expect(fs.readFileSync(path.join(own, 'corral-host', 'cgroup.procs'), 'utf8')).toBe('4242');
    expect(fs.readFileSync(path.join(own, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu');
    cg.place('abc123', 777, 300, 150);
    const vm = path.join(own, 'vm-abc123');
    expect(fs.readFileSync(path.join(vm, 'cgroup.procs'), 'utf8')).toBe('777');
    expect(fs.readFileSync(path.join(vm, 'cpu.weight'), 'utf8')).toBe('300');
    expect(fs.readFileSync(path.join(vm, 'cpu.max'), 'utf8')).toBe('150000 100000');
    cg.apply('abc123', null, null);
    expect(fs.readFileSync(path.join(vm, 'cpu.max'), 'utf8')).toBe('max 100000');
  });

  it('explains why when the cpu controller is not delegated', () => {
    const { mount } = tree('memory');
    const cg = new Cgroups(mount, () => '0::/user.slice/corral.scope\n', 1);
    expect(cg.init()).toMatchObject({ available: false, reason: expect.stringMatching(/cpu controller is not delegated.*Delegate=yes/) });
    expect(() => cg.place('abc', 1, 100, null)).toThrow(/unavailable/);
  });

  it('explains why on a cgroup v1 host', () => {
    const cg = new Cgroups(tempDir(), () => '0::/\n', 1);
    expect(cg.init()).toMatchObject({ available: false, reason: expect.stringMatching(/does not use cgroup v2/) });
  });
});
