// Internal qcow2 snapshots of a stopped VM's files, with qemu-img: create, apply (revert),
// delete, and the tags an image holds. The format is always given, never probed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { qemuImgBinary } from './img.js';

const run = promisify(execFile);

const FLAG = { create: '-c', apply: '-a', delete: '-d' } as const;

export async function imgSnapshot(op: keyof typeof FLAG, file: string, tag: string, env = process.env): Promise<void> {
  try {
    // snapshot has no -f: --image-opts names the driver, so the format is never probed
    await run(qemuImgBinary(env), ['snapshot', '--image-opts', FLAG[op], tag, '--', imageOpts(file)], { timeout: 600_000 });
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`qemu-img snapshot ${FLAG[op]} on ${file}: ${msg.split('\n')[0]}`);
  }
}

/** A qcow2 image as --image-opts (a comma in a value is written twice). */
function imageOpts(file: string): string {
  return `driver=qcow2,file.driver=file,file.filename=${file.replaceAll(',', ',,')}`;
}

/** The snapshot names in a qcow2 image (-U: readable while QEMU has it open). */
export async function imgSnapshotTags(file: string, env = process.env): Promise<string[]> {
  const { stdout } = await run(qemuImgBinary(env), ['info', '-U', '-f', 'qcow2', '--output=json', '--', file], { timeout: 30_000 });
  const info = JSON.parse(stdout) as { snapshots?: Array<{ name: string }> };
  return (info.snapshots ?? []).map((s) => s.name);
}
