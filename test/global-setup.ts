// Checks the Node running the tests, then builds the tiny guest (kernel + busybox initramfs from
// Debian packages) once per run.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { nodeProblem } from './runtime';

export default function setup(): void {
  const problem = nodeProblem();
  if (problem) throw new Error(problem);
  execFileSync('bash', [path.join(__dirname, 'fixtures', 'build-guest.sh')], { stdio: 'inherit' });
}
