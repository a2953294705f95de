// `corral vm console NAME`: the guest's serial console in this terminal. Raw mode so keys
// such as Ctrl-C reach the guest; Ctrl-] (0x1d, as in telnet and virsh) leaves.
import type { ControlClient } from './client.js';
import { guestOutput } from './term-filter.js';

const ESCAPE = 0x1d;

export async function runConsole(c: ControlClient, name: string, raw = false): Promise<number> {
  const vm = await c.call('vm.get', { vm: name });
  await c.call('serial.attach', { vm: vm.id });
  process.stderr.write(`Connected to the serial console of "${vm.name}". Press Ctrl-] to leave.\r\n`);
  const stdin = process.stdin;
  const tty = stdin.isTTY;
  if (tty) stdin.setRawMode(true);
  const print = guestOutput(raw);

  return await new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number, msg?: string) => {
      if (done) return;
      done = true;
      if (tty) stdin.setRawMode(false);
      print.end();
      stdin.destroy(); // a piped stdin would otherwise keep the process alive
      if (msg) process.stderr.write(`\r\n${msg}\r\n`);
      resolve(code);
    };
    c.on('serial.data', (p) => p.vmId === vm.id && print(p.data));
    c.on('serial.closed', (p) => p.vmId === vm.id && finish(0, `[${vm.name} stopped; console closed]`));
    c.onClose(() => finish(1, '[the Corral host went away]'));
    stdin.on('data', (chunk: Buffer) => {
      const esc = chunk.indexOf(ESCAPE);
      const data = esc >= 0 ? chunk.subarray(0, esc) : chunk;
      if (data.length)
        void c.call('serial.write', { vm: vm.id, data: data.toString('base64') }).catch((err: Error) => finish(1, err.message));
      if (esc >= 0) finish(0, '[console closed]');
    });
    stdin.on('end', () => finish(0));
    stdin.resume();
  });
}
