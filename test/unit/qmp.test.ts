// The QMP client against a scripted peer that splits and merges lines across reads.
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient, QmpError } from '../../electron/core/qemu/qmp';
import { tempDir } from '../helpers';

let server: net.Server | null = null;
afterEach(() => server?.close());

/** A fake QEMU: greets in pieces, answers by id, can stay silent for one command. */
function fakeQemu(opts: { silentOn?: string; received?: string[] } = {}): Promise<string> {
  const sock = path.join(tempDir(), 'qmp.sock');
  server = net.createServer((c) => {
    const greeting = JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n';
    let greeted = false;
    c.write(greeting.slice(0, 7));
    setTimeout(() => {
      c.write(greeting.slice(7));
      greeted = true;
    }, 5);
    let buf = '';
    // replies go out one after the other, each in pieces
    let chain = Promise.resolve();
    const send = (...parts: string[]) => {
      chain = chain.then(async () => {
        for (const p of parts) {
          c.write(p);
          await new Promise((r) => setTimeout(r, 3));
        }
      });
    };
    c.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string };
        buf = buf.slice(nl + 1);
        opts.received?.push(`${greeted ? '' : 'before greeting: '}${msg.execute}`);
        if (msg.execute === opts.silentOn) continue;
        if (msg.execute === 'bad') {
          send(JSON.stringify({ error: { class: 'GenericError', desc: 'no such thing' }, id: msg.id }) + '\n');
          continue;
        }
        // an event and the reply in one write, the reply itself split in two writes
        const reply = JSON.stringify({ return: { echo: msg.execute }, id: msg.id }) + '\n';
        send(JSON.stringify({ event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } }) + '\n' + reply.slice(0, 10), reply.slice(10));
      }
    });
  });
  return new Promise((resolve) => server!.listen(sock, () => resolve(sock)));
}

describe('QMP client', () => {
  it('negotiates, matches replies by id and delivers events, whatever the read boundaries', async () => {
    const qmp = await QmpClient.connect(await fakeQemu());
    const events: string[] = [];
    qmp.on('event', (e) => events.push(e.event));
    const [a, b] = await Promise.all([qmp.execute('query-status'), qmp.execute('query-version')]);
    expect(a).toEqual({ echo: 'query-status' });
    expect(b).toEqual({ echo: 'query-version' });
    expect(events).toEqual(['STOP', 'STOP']);
    await expect(qmp.execute('bad')).rejects.toBeInstanceOf(QmpError);
    qmp.close();
  });

  it('holds commands sent during the negotiation until the greeting, after qmp_capabilities', async () => {
    const received: string[] = [];
    const qmp = await QmpClient.open(await fakeQemu({ received }));
    const early = qmp.execute('query-chardev');
    await qmp.ready;
    expect(await early).toEqual({ echo: 'query-chardev' });
    expect(received).toEqual(['qmp_capabilities', 'query-chardev']);
    qmp.close();
  });

  it('times out a command that gets no answer, and keeps working afterwards', async () => {
    const qmp = await QmpClient.connect(await fakeQemu({ silentOn: 'hang' }));
    await expect(qmp.execute('hang', undefined, 100)).rejects.toThrow(/timed out after 100 ms/);
    expect(await qmp.execute('query-status')).toEqual({ echo: 'query-status' });
    qmp.close();
  });

  it('fails pending commands when the peer goes away', async () => {
    const qmp = await QmpClient.connect(await fakeQemu({ silentOn: 'hang' }));
    const pending = qmp.execute('hang', undefined, 5000);
    for (const c of await new Promise<net.Socket[]>((r) => server!.getConnections(() => r([])))) c.destroy();
    server!.close();
    qmp.close();
    await expect(pending).rejects.toThrow(/closed/);
    await expect(qmp.execute('query-status')).rejects.toThrow(/closed/);
  });
});
