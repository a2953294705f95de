// How fast a real `corral serve` answers fuzzed messages (random, mutated, wrong-typed; see
// test/support/fuzz-messages.ts) over its WebSocket, kept 64 in flight for 60 s, and whether
// it is still up and answering afterwards. Informational: no target.
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import WebSocket from 'ws';
import { tempDir } from '../helpers';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { MessageFuzzer } from '../support/fuzz-messages';
import type { Row } from './lib';

const IN_FLIGHT = 64;

export async function fuzzRow(): Promise<Row> {
  const secs = Number(process.env.BENCH_FUZZ_SECONDS ?? 60);
  const seed = Number(process.env.CORRAL_FUZZ_SEED ?? randomInt(2 ** 31));
  const dataDir = tempDir('corral-bench-fuzz-');
  const serve = await ServeProcess.start(dataDir);
  try {
    const fuzz = new MessageFuzzer(seed);
    const ws = new WebSocket(`ws://127.0.0.1:${serve.port}/api?token=${serve.token}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let answered = 0;
    let sent = 0;
    const end = performance.now() + secs * 1000;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent - answered < IN_FLIGHT && performance.now() < end) {
          const f = fuzz.frame();
          if (f.kind === 'bytes') continue; // bytes that are not UTF-8 end the connection: the test covers those
          ws.send(f.data, { binary: f.kind === 'binary' });
          sent++;
        }
        if (performance.now() >= end && answered >= sent) resolve();
      };
      ws.on('message', (d) => {
        if (!d.toString().startsWith('{"event"')) answered++;
        pump();
      });
      ws.once('close', () => resolve());
      pump();
    });
    const elapsed = secs + Math.max(0, performance.now() - end) / 1000;
    ws.close();
    const api = await WsApi.connect(serve.port, serve.token).catch(() => null);
    const up = serve.child.exitCode === null && !!api && Array.isArray(await api.call('vm.list', {}).catch(() => null));
    api?.close();
    return {
      name: `fuzz throughput: messages/s the host survives over ${secs} s (informational)`,
      value: `${(answered / elapsed).toFixed(0)} msg/s (${answered} answered, seed ${seed}, host ${up ? 'up' : 'DOWN'})`,
      floor: '-',
      target: '-',
      ok: up ? null : false,
    };
  } finally {
    await serve.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
