// The API of accounts: who am I, users, API tokens and the audit log. Who may call each is
// in api/roles.ts, enforced by the dispatcher.
import type { Handlers } from '../api/dispatcher.js';
import type { Accounts } from '../auth/accounts.js';
import type { AuditRepo } from '../store/audit-repo.js';

type AccountMethod = 'auth.whoami' | `user.${string}` | `token.${string}` | 'audit.list';
export type AccountHandlers = Pick<Handlers, Extract<keyof Handlers, AccountMethod>>;

export function accountHandlers(accounts: Accounts, audit: AuditRepo): AccountHandlers {
  const ok = { ok: true as const };
  return {
    'auth.whoami': (_a, s) => s.identity,
    'user.list': () => accounts.users(),
    'user.add': (a) => accounts.addUser(a.name, a.role, a.password),
    'user.remove': (a) => (accounts.removeUser(a.name), ok),
    'user.passwd': async (a) => (await accounts.setPassword(a.name, a.password), ok),
    'token.create': (a) => accounts.createToken(a.user, a.role, a.expiresSec),
    'token.list': () => accounts.tokens(),
    'token.revoke': (a) => (accounts.revokeToken(a.id), ok),
    'audit.list': (a) => audit.list(a.limit),
  };
}
