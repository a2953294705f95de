// Which contract methods the host owning a VM carries out when another host of the cluster is
// asked: every method whose arguments name one (`vm`), derived from the contract so a new method
// is forwarded without a list to keep, less those that must be answered where they were asked.
import { methods, type MethodName } from '../api/contract.js';

/** Methods naming a VM that stay local, and why. */
export const LOCAL_ONLY: Partial<Record<MethodName, string>> = {
  // the target's side of a migration: `vm` is the arriving VM here, not one to look up
  'migration.finishIncoming': 'the target side of a migration',
  'migration.abortIncoming': 'the target side of a migration',
  'migration.touchIncoming': 'the target side of a migration',
  // streams bound to the caller's session, relayed to the owner by host/remote-consoles.ts
  'serial.attach': 'a console stream to this session',
  'serial.detach': 'a console stream to this session',
  'console.ticket': "a ticket for this host's display proxy",
  'terminal.open': "a terminal in this host's session",
};

function namesVm(args: unknown): boolean {
  const shape = (args as { shape?: Record<string, unknown> }).shape;
  return !!shape && 'vm' in shape;
}

/** The methods carried out by the VM's owner. */
export const FORWARDED: readonly MethodName[] = (Object.keys(methods) as MethodName[]).filter(
  (m) => namesVm(methods[m].args) && !(m in LOCAL_ONLY),
);
