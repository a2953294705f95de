import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/chaos/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // two cores: QEMU guests under TCG need one each
    maxWorkers: 2,
    // Deadlines only guard against hangs: a loaded machine boots a TCG guest in over a minute
    // at times (BOOT_MS in test/helpers.ts), so they are generous. No test asserts a speed:
    // that is `npm run bench`.
    testTimeout: 240_000,
    hookTimeout: 240_000,
    teardownTimeout: 60_000,
    // expect.poll's default of 1 s is a speed assertion on a loaded machine
    expect: { poll: { timeout: 30_000 } },
    env: { CORRAL_ACCEL: 'tcg' },
  },
});
