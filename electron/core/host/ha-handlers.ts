// The API of high availability (core/ha): status and load balancing. Who may call each is in
// api/roles.ts.
import type { Handlers } from '../api/dispatcher.js';
import type { HaService } from '../ha/service.js';

export type HaHandlers = Pick<Handlers, 'ha.status' | 'ha.balance'>;

export function haHandlers(ha: HaService): HaHandlers {
  return {
    'ha.status': () => ha.status(),
    'ha.balance': (a) => ha.balance(a.mode),
  };
}
