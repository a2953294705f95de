// What a migration refuses up front, the same words on both hosts.
import type { VmConfig } from '../../api/contract.js';

/**
 * A VM with a TPM is not migrated. QEMU's tpm-emulator can carry swtpm's state in the stream,
 * but swtpm 0.7.1 (Debian 12) offers no migration options, and the state (the TPM's keys and
 * NVRAM) would be written on the target by a swtpm set up from scratch: a slip there loses
 * the guest's sealed secrets for good. Refusing keeps them where they are; stop the VM and
 * move its folder by hand, or remove the TPM.
 */
export function tpmRefusal(name: string, config: Pick<VmConfig, 'tpm'>): string | null {
  return config.tpm
    ? `"${name}" has a TPM: Corral does not migrate TPM state (swtpm 0.7.1 has no migration support, and its keys must not be lost)`
    : null;
}
