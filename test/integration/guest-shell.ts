// Commands in a test guest's serial shell, and the disk data the portable tests follow from VM
// to clone to bundle: a block written at a fixed place of /dev/vda, hashed inside the guest.
import { FIXTURE } from '../helpers';
import { stripAnsi, type TestHost } from './host-harness';

let seq = 0;

/** Runs a shell command in the guest and returns what it printed between two markers. */
export async function guestRun(t: TestHost, id: string, cmd: string): Promise<string> {
  const tag = `R${++seq}X`;
  await t.type(id, `echo ${tag}-begin; ${cmd}; echo ${tag}-end\n`);
  await t.waitSerial(id, new RegExp(`\\n${tag}-end`), 60_000);
  const out = stripAnsi(t.serial.get(id)!);
  const from = out.lastIndexOf(`\n${tag}-begin`);
  return out.slice(out.indexOf('\n', from + 1) + 1, out.lastIndexOf(`\n${tag}-end`)).trim();
}

/** Starts a VM and waits for its shell (its serial output starts afresh). */
export async function bootToShell(t: TestHost, id: string): Promise<void> {
  t.serial.set(id, '');
  await t.call('vm.start', { vm: id });
  await t.attach(id);
  await t.waitSerial(id, FIXTURE.prompt);
}

const SECTOR = 2048;

/** Writes `text` at 1 MiB into /dev/vda, flushed to the disk. */
export async function writeMark(t: TestHost, id: string, text: string): Promise<void> {
  await guestRun(t, id, `printf '%s' '${text}' | dd of=/dev/vda bs=512 seek=${SECTOR} conv=notrunc 2>/dev/null; sync`);
}

/** The SHA-256 of the 4 KiB at 1 MiB of /dev/vda, and its text, as the guest reads them. */
export async function readMark(t: TestHost, id: string): Promise<{ sha: string; text: string }> {
  const sha = (await guestRun(t, id, `dd if=/dev/vda bs=512 skip=${SECTOR} count=8 2>/dev/null | sha256sum`)).split(/\s+/)[0]!;
  const text = await guestRun(t, id, `dd if=/dev/vda bs=512 skip=${SECTOR} count=1 2>/dev/null | strings`);
  return { sha, text };
}

/** The guest's NIC MAC address. */
export function guestMac(t: TestHost, id: string): Promise<string> {
  return guestRun(t, id, 'cat /sys/class/net/eth0/address');
}
