// A bridge NIC joins an existing host bridge through qemu-bridge-helper, which makes the tap
// and enslaves it, as root (setuid, or the host is root) and only for bridges its ACL
// (/etc/qemu/bridge.conf) allows. Checked before QEMU starts, so a missing piece is named with
// what to run instead of QEMU's terse failure.
import fs from 'node:fs';
import type { Nic } from '../api/contract.js';
import { BRIDGE_HELPER } from './nic-argv.js';

export const BRIDGE_ACL = process.env.CORRAL_BRIDGE_ACL ?? '/etc/qemu/bridge.conf';

/** The bridges the ACL allows ("allow br0", "allow all"), following its "include" lines. */
export function allowedBridges(file = BRIDGE_ACL, depth = 0): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    const [word, arg] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (word === 'allow' && arg) out.add(arg);
    if (word === 'include' && arg && depth < 4) for (const b of allowedBridges(arg, depth + 1)) out.add(b);
  }
  return out;
}

/** Whether `name` is a bridge on this host. */
export function isBridge(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}/bridge`);
}

/** Throws, saying what to run, when a bridge NIC cannot be set up. */
export function checkBridges(nics: readonly Nic[]): void {
  for (const nic of nics) {
    if (nic.kind !== 'bridge' || !nic.bridge) continue;
    const br = nic.bridge;
    if (!fs.existsSync(`/sys/class/net/${br}`))
      throw new Error(
        `${nic.id}: there is no bridge "${br}" on this host: make one (sudo ip link add ${br} type bridge && sudo ip link set ${br} up) or pick another`,
      );
    if (!isBridge(br))
      throw new Error(`${nic.id}: "${br}" is a network interface but not a bridge: pick a bridge (ip -br link show type bridge)`);
    const acl = allowedBridges();
    if (!acl.has(br) && !acl.has('all'))
      throw new Error(`${nic.id}: ${BRIDGE_ACL} does not allow bridge "${br}": run  echo 'allow ${br}' | sudo tee -a ${BRIDGE_ACL}`);
    if (!fs.existsSync(BRIDGE_HELPER))
      throw new Error(`${nic.id}: ${BRIDGE_HELPER} is missing: install QEMU's bridge helper (Debian: qemu-system-common)`);
    const st = fs.statSync(BRIDGE_HELPER);
    if (process.getuid?.() !== 0 && !(st.mode & 0o4000))
      throw new Error(
        `${nic.id}: ${BRIDGE_HELPER} is not setuid root, so only a host running as root can use bridges: run  sudo chmod u+s ${BRIDGE_HELPER}`,
      );
  }
}
