// The shapes of accounts: roles, users, API tokens, who is calling, and the audit log.
// contract.ts re-exports them beside the method table.
import { z } from 'zod';

/** viewer < operator < admin: each role may do everything the roles below it may. */
export const Role = z.enum(['viewer', 'operator', 'admin']);

export const UserName = z
  .string()
  .regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'must start with a letter or "_" and use only letters, digits, ".", "_" or "-" (at most 32)');

export const Password = z.string().min(8, 'must be at least 8 characters').max(1024, 'must be at most 1024 characters');

export const UserInfo = z.object({ name: z.string(), role: Role, createdAt: z.number() });

export const TokenId = z.string().regex(/^[0-9a-f]{12}$/, 'is not a token id');

export const TokenInfo = z.object({
  id: z.string(),
  user: z.string(),
  role: Role,
  createdAt: z.number(),
  /** null: never expires. */
  expiresAt: z.number().nullable(),
  lastUsed: z.number().nullable(),
});

/**
 * Who a connection acts as. owner: the host's own user (the desktop app, the control socket's
 * peer, the token `corral serve` prints): an admin without a login. host: another host of the
 * cluster, calling over the mutual-TLS peer API (user is "host:NAME").
 */
export const Identity = z.object({
  kind: z.enum(['owner', 'user', 'token', 'host']),
  user: z.string().nullable(),
  role: Role,
});

export const AuditEntry = z.object({
  id: z.number(),
  at: z.number(),
  /** The user, "owner" for the host's own user. */
  who: z.string(),
  method: z.string(),
  /** The VM (or user, or token) the call was about, where it names one. */
  target: z.string().nullable(),
  /** The peer's address; null for the desktop app and the control socket. */
  address: z.string().nullable(),
  ok: z.boolean(),
  error: z.string().nullable(),
});

export type Role = z.infer<typeof Role>;
export type UserInfo = z.infer<typeof UserInfo>;
export type TokenInfo = z.infer<typeof TokenInfo>;
export type Identity = z.infer<typeof Identity>;
export type AuditEntry = z.infer<typeof AuditEntry>;
