// Naming who holds a host port a forward wants (vms/port-holder.ts): the socket tables are
// read by port and state, and a real listening socket of this process is found by its inode.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { portHolder, socketInodes } from '../../electron/core/vms/port-holder';
import { freePort } from '../helpers';

const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 5151 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6363 1 0000000000000000 100 0 0 10 0
`;

describe('who holds a port', () => {
  it('takes listening tcp sockets on that port only', () => {
    expect([...socketInodes('tcp', 8080, [TABLE])]).toEqual(['4242']);
    expect([...socketInodes('tcp', 80, [TABLE])]).toEqual(['6363']);
    expect([...socketInodes('tcp', 81, [TABLE])]).toEqual([]);
    // udp has no listen state: any bound socket
    expect([...socketInodes('udp', 8080, [TABLE])]).toEqual(['4242', '5151']);
  });

  it('names the process of a real listening socket', async () => {
    const port = await freePort();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      expect(portHolder('tcp', port)).toMatch(new RegExp(`^.+, pid ${process.pid}$`));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(portHolder('tcp', port)).toBeNull();
  });
});
