// Facts about the host (QEMU version, acceleration), loaded on every (re)connection.
import type { HostInfo, HostSettings } from '../../../electron/core/api/contract';
import { api } from './api';

class Host {
  info = $state.raw<HostInfo | null>(null);

  constructor() {
    api.onConnect(() => {
      api.call('host.info', {}).then(
        (info) => {
          this.info = info;
        },
        (err: unknown) => console.warn('corral: host.info failed', err),
      );
    });
  }

  /** Changes host settings; rejects with the host's error. */
  async saveSettings(patch: Partial<HostSettings>): Promise<void> {
    const settings = await api.call('host.settings', patch);
    if (this.info) this.info = { ...this.info, settings };
  }
}

export const host = new Host();
