// Users, API tokens and the audit log. Over the control socket the caller is the host's owner,
// so the first admin is created here, on the host itself.
import type { AuditEntry, TokenInfo } from '../../core/api/contract.js';
import { out, printJson, table } from '../format.js';
import { readPassword } from '../password.js';
import { command, flag, option, UsageError } from '../table.js';
import { duration, int, oneOf } from '../values.js';

const json = flag('print JSON for scripts');
const role = oneOf('viewer', 'operator', 'admin');
const passwordStdin = flag('read the password from the first line of stdin instead of asking');
const when = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export const accountCommands = [
  command({
    words: 'user add',
    args: ['NAME'],
    summary: 'Create a user who logs in to the web UI (viewer, operator or admin)',
    options: { role: option('ROLE', 'viewer, operator or admin (required)', role), 'password-stdin': passwordStdin },
    async run({ args: [name], o, host }) {
      if (!o.role) throw new UsageError('--role is needed: viewer, operator or admin');
      const password = await readPassword(Boolean(o['password-stdin']));
      const u = await (await host()).call('user.add', { name, role: o.role, password });
      out(`${u.name}: ${u.role}`);
      return 0;
    },
  }),
  command({
    words: 'user list',
    args: [],
    summary: 'List the users and their roles',
    options: { json },
    async run({ o, host }) {
      const users = await (await host()).call('user.list', {});
      if (o.json) printJson(users);
      else if (!users.length) out('No users: `corral serve` acts for its owner alone. Add one with corral user add NAME --role admin');
      else out(table([['NAME', 'ROLE', 'CREATED'], ...users.map((u) => [u.name, u.role, when(u.createdAt)])]));
      return 0;
    },
  }),
  command({
    words: 'user remove',
    args: ['NAME'],
    summary: 'Remove a user: their logins end and their API tokens are revoked',
    options: {},
    async run({ args: [name], host }) {
      await (await host()).call('user.remove', { name });
      out(`removed ${name}`);
      return 0;
    },
  }),
  command({
    words: 'user passwd',
    args: ['NAME'],
    summary: "Set a user's password; their logins end",
    options: { 'password-stdin': passwordStdin },
    async run({ args: [name], o, host }) {
      const password = await readPassword(Boolean(o['password-stdin']), 'New password');
      await (await host()).call('user.passwd', { name, password });
      out(`password of ${name} changed`);
      return 0;
    },
  }),
  command({
    words: 'token create',
    args: ['USER'],
    summary: 'Create an API token for scripts acting as USER; the token is shown once',
    options: {
      role: option('ROLE', "viewer, operator or admin, at most the user's (required)", role),
      expires: option('DURATION', 'lifetime, e.g. 30d or 12h (default: until revoked)', duration),
      json,
    },
    async run({ args: [user], o, host }) {
      if (!o.role) throw new UsageError('--role is needed: viewer, operator or admin');
      const t = await (await host()).call('token.create', { user, role: o.role, ...(o.expires ? { expiresSec: o.expires } : {}) });
      if (o.json) printJson(t);
      else {
        out(t.token);
        process.stderr.write(`token ${t.id} for ${t.user} (${t.role}), expires ${when(t.expiresAt)}: it is not shown again\n`);
      }
      return 0;
    },
  }),
  command({
    words: 'token list',
    args: [],
    summary: 'List the API tokens (never their secrets)',
    options: { json },
    async run({ o, host }) {
      const tokens = await (await host()).call('token.list', {});
      if (o.json) printJson(tokens);
      else out(tokenTable(tokens));
      return 0;
    },
  }),
  command({
    words: 'token revoke',
    args: ['ID'],
    summary: 'Revoke an API token',
    options: {},
    async run({ args: [id], host }) {
      await (await host()).call('token.revoke', { id });
      out(`revoked ${id}`);
      return 0;
    },
  }),
  command({
    words: 'audit',
    args: [],
    summary: 'Print the audit log: every change, who made it, from where, and whether it worked',
    options: { json, limit: option('N', 'how many of the newest entries (default 50)', int) },
    async run({ o, host }) {
      const entries = (await (await host()).call('audit.list', { limit: o.limit ?? 50 })).reverse();
      if (o.json) printJson(entries);
      else out(auditTable(entries));
      return 0;
    },
  }),
];

function tokenTable(tokens: TokenInfo[]): string {
  if (!tokens.length) return 'No API tokens.';
  return table([
    ['ID', 'USER', 'ROLE', 'CREATED', 'EXPIRES', 'LAST USED'],
    ...tokens.map((t) => [t.id, t.user, t.role, when(t.createdAt), when(t.expiresAt), when(t.lastUsed)]),
  ]);
}

function auditTable(entries: AuditEntry[]): string {
  if (!entries.length) return 'The audit log is empty.';
  return table([
    ['WHEN', 'WHO', 'FROM', 'METHOD', 'TARGET', 'RESULT'],
    ...entries.map((e) => [when(e.at), e.who, e.address ?? 'local', e.method, e.target ?? '-', e.ok ? 'ok' : `error: ${e.error}`]),
  ]);
}
