// Copies a stopped VM's disk into a target's NBD export over TLS (an offline move with local
// storage): qemu-img reads the image and writes the export, the same TLS setup as QEMU's.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { optValue } from './escape.js';
import { qemuImgBinary, type ImageFormat } from './img.js';
import { diskExport, MIGRATION_TLS } from './migration-commands.js';

const run = promisify(execFile);

export async function copyToNbd(
  file: string,
  format: ImageFormat,
  target: { host: string; port: number; index: number },
  credsDir: string,
  env = process.env,
  /** Kills qemu-img: a target that stopped answering (its writes would block until TCP gives up). */
  signal?: AbortSignal,
): Promise<void> {
  const tls = `tls-creds-x509,id=${MIGRATION_TLS},dir=${optValue(credsDir)},endpoint=client,verify-peer=on`;
  const dest = [
    'driver=nbd',
    'server.type=inet',
    `server.host=${optValue(target.host)}`,
    `server.port=${target.port}`,
    `export=${diskExport(target.index)}`,
    `tls-creds=${MIGRATION_TLS}`,
  ].join(',');
  await run(qemuImgBinary(env), ['convert', '-n', '--object', tls, '-f', format, '--target-image-opts', file, dest], {
    env,
    maxBuffer: 1024 * 1024,
    signal,
  });
}
