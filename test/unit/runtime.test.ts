// Guards the Node that npm scripts run (see test/runtime.ts and scripts/setup.sh). On Node 20 the
// global setup already stops the run with the same message, as Vitest 5 cannot report failures there.
import { describe, expect, it } from 'vitest';
import { ENGINES, nodeProblem } from '../runtime';

describe('the Node running the tests', () => {
  it(`meets engines.node (${ENGINES})`, () => {
    expect(nodeProblem()).toBeNull();
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });

  it('is judged by engines.node, and a too old one is told to run scripts/setup.sh', () => {
    expect(nodeProblem('20.20.2')).toContain(`needs Node ${ENGINES}: run \`bash scripts/setup.sh --dev\``);
    expect(nodeProblem('22.13.1')).not.toBeNull();
    expect(nodeProblem('22.14.0')).toBeNull();
    expect(nodeProblem('24.22.3')).toBeNull();
  });
});
