// Builds the tiny guest (kernel + busybox initramfs from Debian packages) once per run.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  execFileSync('bash', [path.join(__dirname, 'fixtures', 'build-guest.sh')], { stdio: 'inherit' });
}
