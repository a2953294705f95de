// How the source host talks to the target host during a migration: contract calls, whatever
// carries them (the cluster's mutual-TLS peer API, or another `corral serve`'s WebSocket API).
import type { ArgsIn, MethodName, Result } from '../../api/contract.js';

export interface PeerClient {
  /** The target's address as the source dials it (where its QEMU listens). */
  readonly address: string;
  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>>;
  close(): void;
}

/** Opens a connection to the target: a cluster host's name, or a URL with `token` (an admin of that host). */
export type PeerConnector = (to: string, token: string | undefined) => Promise<PeerClient>;
