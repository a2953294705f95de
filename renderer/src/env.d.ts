/// <reference types="svelte" />
/// <reference types="vite/client" />

import type { ResponseMessage } from '../../electron/core/api/contract';

declare global {
  /** What the Electron preload exposes; absent when the UI is served to a browser. */
  interface CorralBridge {
    call(method: string, args: unknown): Promise<ResponseMessage>;
    on(listener: (event: string, payload: unknown) => void): () => void;
  }

  interface Window {
    corral?: CorralBridge;
  }
}

export {};
