// Which methods a host of the cluster hands to the VM's owner, and what maintenance accepts.
import { describe, expect, it } from 'vitest';
import { methods, type MethodName } from '../../electron/core/api/contract';
import { FORWARDED, LOCAL_ONLY } from '../../electron/core/host/forwarded-methods';

describe('forwarding to the host that owns a VM', () => {
  it('forwards every method naming a VM, the newer ones too', () => {
    for (const m of [
      'vm.get',
      'vm.stop',
      'snapshot.create',
      'snapshot.revert',
      'vm.clone',
      'vm.export',
      'vm.share.add',
      'vm.share.remove',
      'vm.addresses',
      'vm.migrate',
      'vm.migrateCancel',
      'vm.moveTargets',
      'vm.haBlocker',
      'monitor.exec',
    ] as MethodName[])
      expect(FORWARDED).toContain(m);
  });

  it('keeps the target side of a migration and session streams local', () => {
    for (const m of ['migration.finishIncoming', 'migration.abortIncoming', 'serial.attach', 'terminal.open'] as MethodName[]) {
      expect(FORWARDED).not.toContain(m);
      expect(LOCAL_ONLY[m]).toBeTruthy();
    }
    // the deny list names only methods that exist and name a VM
    for (const m of Object.keys(LOCAL_ONLY) as MethodName[]) expect(Object.keys(methods[m].args.shape)).toContain('vm');
  });

  it('forwards nothing that names no VM', () => {
    for (const m of FORWARDED) expect(Object.keys(methods[m].args.shape)).toContain('vm');
    expect(FORWARDED).not.toContain('vm.create');
    expect(FORWARDED).not.toContain('vm.list');
    // asked of each target by the VM's owner: answered where it is asked
    expect(FORWARDED).not.toContain('migration.checkIncoming');
  });
});

describe('vm.migrate arguments', () => {
  const parse = (a: object) => methods['vm.migrate'].args.safeParse({ vm: 'x', ...a });

  it('takes a cluster host by name, without a token', () => {
    expect(parse({ to: 'b' }).success).toBe(true);
  });

  it('needs a token with a URL, and a URL that parses', () => {
    const noToken = parse({ to: 'http://10.0.0.2:7420' });
    expect(noToken.success).toBe(false);
    expect(noToken.error!.issues[0]!.path).toEqual(['token']);
    expect(parse({ to: 'http://10.0.0.2:7420', token: 't' }).success).toBe(true);
    expect(parse({ to: 'http://', token: 't' }).error!.issues[0]!.path).toEqual(['to']);
  });
});

describe('the evacuate setting', () => {
  it('defaults to migrate and takes only its three modes', () => {
    const create = methods['vm.create'].args.parse({ name: 'v' });
    expect(create.evacuate).toBe('migrate');
    expect(methods['vm.update'].args.safeParse({ vm: 'v', evacuate: 'stop' }).success).toBe(true);
    const bad = methods['vm.update'].args.safeParse({ vm: 'v', evacuate: 'pause' });
    expect(bad.error!.issues[0]!.path).toEqual(['evacuate']);
  });
});
