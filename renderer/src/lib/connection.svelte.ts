// The state of the link to the host, for the "Disconnected — reconnecting…" banner.
import { api, type ConnectionStatus } from './api';

class Connection {
  status = $state<ConnectionStatus>(api.status);
  readonly kind = api.kind;

  constructor() {
    api.onStatus((s) => {
      this.status = s;
    });
  }

  get open(): boolean {
    return this.status.kind === 'open';
  }

  retry(): void {
    api.retryNow();
  }
}

export const connection = new Connection();
