// The fuzzer must never send a valid call of a method that changes something: one such call
// (`cluster.init` with `{}` args) once turned the fuzzed host into a cluster.
import { describe, expect, it } from 'vitest';
import { changesSomething, MessageFuzzer } from '../support/fuzz-messages';

describe('the message fuzzer', () => {
  it('never makes a valid call of a method that changes something', () => {
    let made = 0;
    for (const seed of [1, 2, 1970370667]) {
      const fuzz = new MessageFuzzer(seed, ['keep one', 'keep-two']);
      for (let i = 0; i < 2000; i++, made++) {
        const t = fuzz.text();
        if (changesSomething(t)) expect.fail(`seed ${seed}, message ${i}: ${t.slice(0, 200)}`);
      }
    }
    expect(made).toBe(6000);
  }, 300_000);
});
