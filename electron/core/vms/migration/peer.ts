// How the source host talks to the target host during a migration: contract calls, whatever
// carries them (the WebSocket API of `corral serve` today; the cluster's mutual-TLS link later).
import type { ArgsIn, MethodName, Result } from '../../api/contract.js';

export interface PeerClient {
  /** The target's address as the source dials it (where its QEMU listens). */
  readonly address: string;
  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>>;
  close(): void;
}

/** Opens a connection to the host at `url` with `token` (an admin of that host). */
export type PeerConnector = (url: string, token: string) => Promise<PeerClient>;
