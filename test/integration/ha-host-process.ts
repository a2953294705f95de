// A host's HA side as its own process (run with `node --import tsx`), so that a test can freeze
// it (SIGSTOP) the way a stalled `corral serve` would be. Configured by CORRAL_HA_HOST (JSON);
// prints one JSON line per event on stdout; answers "status" on stdin.
import readline from 'node:readline';
import { Etcd3 } from 'etcd3';
import { HostLiveness } from '../../electron/core/ha/host-liveness';
import type { Guard } from '../../electron/core/ha/fencer/protocol';

interface Config {
  etcdHosts: string[];
  hostId: string;
  fencerDir: string;
  fencerEntry: string;
  ttlSec: number;
  marginMs: number;
  guards: Guard[];
}

const cfg = JSON.parse(process.env.CORRAL_HA_HOST!) as Config;
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const etcd = new Etcd3({ hosts: cfg.etcdHosts });
const live = new HostLiveness(etcd, {
  hostId: cfg.hostId,
  fencerDir: cfg.fencerDir,
  aliveKey: `corral/hosts/${cfg.hostId}/alive`,
  ttlSec: cfg.ttlSec,
  marginMs: cfg.marginMs,
  fencer: { entry: cfg.fencerEntry },
  guards: () => cfg.guards,
  onEvent: (what) => say({ ev: 'event', what }),
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'status') say({ ev: 'status', blocker: live.haStartBlocker(), fence: live.fence });
});

live.start().then(
  () => say({ ev: 'ready' }),
  (err: Error) => {
    say({ ev: 'error', message: err.message });
    process.exit(1);
  },
);
