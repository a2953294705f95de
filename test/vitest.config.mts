import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // two cores: QEMU guests under TCG need one each
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { CORRAL_ACCEL: 'tcg' },
  },
});
