import { defineConfig } from 'vitest/config';
import base from './vitest.config.mts';

// `npm run test:chaos`: the HA chaos test alone (three hosts in network namespaces: a host
// killed, cut off, frozen; an independent observer of QEMU processes; fsck), ROUNDS rounds
// (default 3, as in `npm test`).
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/chaos/**/*.test.ts'],
    env: { ...base.test!.env, ROUNDS: process.env.ROUNDS ?? '3' },
  },
});
