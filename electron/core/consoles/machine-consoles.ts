// What the consoles ask of a running VM's QEMU: its screen as PNG, a read-only monitor
// command, the socket of its graphical console. Running VMs come from the registry.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { QemuDriver } from '../qemu/driver.js';
import type { Registry, RunningVm } from '../vms/registry.js';
import { checkMonitorCommand } from './monitor.js';

export class MachineConsoles {
  constructor(
    private readonly registry: Registry,
    private readonly driver: QemuDriver,
  ) {}

  /** The guest's screen as PNG bytes (QMP screendump into the VM's private run dir). */
  async screenshot(vm: VmInfo): Promise<Buffer> {
    const run = this.running(vm);
    const file = path.join(this.driver.scratchDir(vm.id), `screen-${randomBytes(4).toString('hex')}.png`);
    try {
      await run.machine.qmp.screendump(file);
      return fs.readFileSync(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /** A read-only HMP "info" command; anything else is refused. */
  async monitor(vm: VmInfo, input: string): Promise<string> {
    const checked = checkMonitorCommand(input);
    if ('error' in checked) throw new CorralError('invalid-argument', checked.error, 'command');
    return this.running(vm).machine.qmp.humanMonitor(checked.command);
  }

  /** The VNC socket of a running VM, or null. */
  displaySocket(vmId: string): string | null {
    return this.registry.has(vmId) ? this.driver.displaySocket(vmId) : null;
  }

  private running(vm: VmInfo): RunningVm {
    const run = this.registry.get(vm.id);
    if (!run) throw new CorralError('conflict', `"${vm.name}" is not running`);
    return run;
  }
}
