// The state of the link to the host, for the "Disconnected — reconnecting…" banner.
import type { ApiClient, ConnectionStatus } from './api';

export class Connection {
  status = $state<ConnectionStatus>({ kind: 'connecting' });
  readonly kind: ApiClient['kind'];
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
    this.kind = api.kind;
    this.status = api.status;
    api.onStatus((s) => {
      this.status = s;
    });
  }

  get open(): boolean {
    return this.status.kind === 'open';
  }

  retry(): void {
    this.#api.retryNow();
  }
}
