// What the consoles ask of a running VM's QEMU: its screen as PNG, a read-only monitor
// command, the socket of its graphical console. Running VMs come from the registry.
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

  /** The guest's screen as PNG bytes (QMP screendump into a dir only QEMU's user may enter). */
  async screenshot(vm: VmInfo): Promise<Buffer> {
    const run = this.running(vm);
    const scratch = this.driver.scratchDir();
    try {
      const file = path.join(scratch.dir, 'screen.png');
      await run.machine.qmp.screendump(file);
      return readScreendump(file);
    } finally {
      scratch.remove();
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

/** A screenshot can be as big as a 4K screen's raw PNG; anything larger is not one. */
const MAX_SCREENDUMP = 64 * 1024 * 1024;

/**
 * Reads what QEMU wrote. QEMU may run as another user who owns the dir, so the name could be
 * a link it planted to a file only the host may read: never follow one, take regular files only.
 */
function readScreendump(file: string): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_SCREENDUMP) throw new Error('QEMU did not write a screenshot');
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
