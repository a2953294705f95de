import { defineConfig } from 'vitest/config';
import base from './vitest.config.mts';

// `npm run test:chaos`: the HA chaos test alone (test/integration/ha-chaos.test.ts, which `npm
// test` runs for one round), over more rounds: ROUNDS=N, 3 unless told.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/integration/ha-chaos.test.ts'],
    env: { ...base.test!.env, ROUNDS: process.env.ROUNDS ?? '3' },
  },
});
