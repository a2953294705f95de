// The API of high availability (core/ha): status and load balancing, and whether a VM's files
// allow HA. Who may call each is in api/roles.ts.
import { CorralError, type Handlers } from '../api/dispatcher.js';
import type { HaService } from '../ha/service.js';
import { checkHaStorage } from '../vms/ha-storage.js';
import type { Vms } from '../vms/index.js';

export type HaHandlers = Pick<Handlers, 'ha.status' | 'ha.balance' | 'vm.haBlocker'>;

export function haHandlers(ha: HaService, vms: Vms): HaHandlers {
  return {
    'ha.status': () => ha.status(),
    'ha.balance': (a) => ha.balance(a.mode),
    // the check vm.update makes when HA is turned on, asked without turning it on
    'vm.haBlocker': (a) => {
      const vm = vms.service.get(a.vm);
      const { pools } = vms.ctx;
      try {
        checkHaStorage({ ...vm.config, ha: { ...vm.config.ha, enabled: true } }, pools, (p) => pools.isShared(p));
        return { why: null };
      } catch (err) {
        if (err instanceof CorralError) return { why: err.details?.reason ?? err.message };
        throw err;
      }
    },
  };
}
