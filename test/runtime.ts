// The Node that runs the tests. Corral needs package.json's engines.node (better-sqlite3 13 crashes on
// Node 20). npm scripts find `node` in node_modules/.bin first, where scripts/setup.sh links the Node 24
// it provides when the machine's own node is older; without that link they get the machine's node.
import fs from 'node:fs';
import path from 'node:path';

export const ENGINES: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).engines.node;

/** Why this Node (by default the one running) cannot run Corral's tests, or null if it can. */
export function nodeProblem(version = process.versions.node): string | null {
  const floor = /^>=(\d+)\.(\d+)$/.exec(ENGINES);
  if (!floor) return `engines.node "${ENGINES}" is not ">=MAJOR.MINOR": update test/runtime.ts and scripts/setup.sh`;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [wantMajor, wantMinor] = [Number(floor[1]), Number(floor[2])];
  if (major > wantMajor || (major === wantMajor && minor >= wantMinor)) return null;
  return (
    `the tests run on Node v${version} (${process.execPath}), but Corral needs Node ${ENGINES}: ` +
    'run `bash scripts/setup.sh --dev`, which gives npm scripts Node 24 when the machine has an older node'
  );
}
