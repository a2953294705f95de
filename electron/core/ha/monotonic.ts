// CLOCK_MONOTONIC in milliseconds. libuv reads it with clock_gettime(CLOCK_MONOTONIC), which on
// Linux counts from the same origin in every process: the host and the fencer compare deadlines
// on it, and neither a wall-clock step (NTP, an admin's `date`) nor a suspended peer shifts it.
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}
