// Who this window acts as on its host, and what that allows: the page asks the host's own role
// table (api/roles), never guesses, and disables what the role cannot do with the reason why.
import type { ArgsIn, Identity, MethodName } from '../../../electron/core/api/contract';
import { forbiddenWhy, may } from '../../../electron/core/api/roles';
import type { ApiClient } from './api';

export class Me {
  /** null until the host said (nothing is allowed before). */
  identity = $state.raw<Identity | null>(null);
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
    api.onConnect(() => {
      void api.call('auth.whoami', {}).then(
        (id) => (this.identity = id),
        () => undefined,
      );
    });
  }

  /** Whether this user may make the call (false while unknown). */
  may<M extends MethodName>(method: M, args?: Partial<ArgsIn<M>>): boolean {
    return this.identity !== null && may(this.identity.role, method, args);
  }

  /** The tooltip of a control this user may not use; null when allowed. */
  why<M extends MethodName>(method: M, args?: Partial<ArgsIn<M>>): string | null {
    if (!this.identity) return 'Checking what you may do…';
    const why = forbiddenWhy(this.identity.role, method, args);
    return why && `Not allowed: ${why.replace(/^needs/, 'this needs')}`;
  }

  /** A login of `corral serve` (not the desktop app or the owner's token): one that can log out. */
  get loggedIn(): boolean {
    return this.identity?.kind === 'user';
  }

  /** Ends the login; the connection then asks to log in again. */
  async logout(): Promise<void> {
    await fetch('/api/logout', { method: 'POST' }).catch(() => undefined);
    this.#api.loggedOut();
  }
}
