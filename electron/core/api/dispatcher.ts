// Validates {method, args} against the contract and runs the handler. Every transport
// (Electron IPC, WebSocket, control socket) funnels through here, so bad input gets the
// same clear error, naming the field, whoever sent it.
import { z } from 'zod';
import {
  methods,
  type ApiError,
  type Args,
  type ErrorCode,
  type EventMap,
  type EventName,
  type MethodName,
  type RequestMessage,
  type ResponseMessage,
  type Result,
} from './contract.js';
import type { Identity } from './account-schemas.js';
import { ACCESS, EVENT_ROLES, atLeast, forbiddenWhy } from './roles.js';

/** The host's own user: the desktop app, the control socket's peer, serve's printed token. */
export const OWNER: Identity = Object.freeze({ kind: 'owner', user: null, role: 'admin' });

/** What the audit log keeps of one call. */
export interface AuditRecord {
  identity: Identity;
  address: string | null;
  /** A method of the contract, or an HTTP route that changes something (an upload). */
  method: MethodName | 'pool.upload';
  target: string | null;
  error: ApiError | null;
}

export class CorralError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    /** Figures the page shows without parsing the message (a limit, the current value). */
    readonly details?: Pick<ApiError, 'limit' | 'current' | 'reason'>,
  ) {
    super(message);
  }
}

/** How often a held-back client's backlog is looked at (see whenDrained). */
const DRAIN_CHECK_MS = 20;

export interface SessionOptions {
  /** Who the peer acts as; the owner unless the transport authenticated someone else. */
  identity?: Identity;
  /** The peer's network address, for the audit log. */
  address?: string | null;
}

/** One client connection. Handlers use it to push events to that client only. */
export class Session {
  private closers: Array<() => void> = [];
  closed = false;
  readonly identity: Identity;
  readonly address: string | null;

  constructor(
    readonly label: string,
    private readonly sink: (event: EventName, payload: unknown) => void,
    /** Bytes queued towards this client and not yet sent, where the transport knows (for backpressure). */
    readonly backlog: () => number = () => 0,
    opts: SessionOptions = {},
  ) {
    this.identity = opts.identity ?? OWNER;
    this.address = opts.address ?? null;
  }

  /** Events this session's role may not see are dropped here, whoever pushes them. */
  send<E extends EventName>(event: E, payload: EventMap[E]): void {
    if (!this.closed && atLeast(this.identity.role, EVENT_ROLES[event])) this.sink(event, payload);
  }

  /**
   * Calls `fn` once the backlog towards this client is below `bytes`, or it closed: for
   * output held back from a client that could not keep up. Returns a cancel function.
   */
  whenDrained(bytes: number, fn: () => void): () => void {
    const timer = setInterval(() => {
      if (!this.closed && this.backlog() >= bytes) return;
      clearInterval(timer);
      fn();
    }, DRAIN_CHECK_MS);
    return () => clearInterval(timer);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closers.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closers.splice(0)) {
      try {
        fn();
      } catch {
        // a failing cleanup must not stop the others
      }
    }
  }
}

export type Handlers = {
  [M in MethodName]: (args: Args<M>, session: Session) => Promise<Result<M>> | Result<M>;
};

export function formatZodError(err: z.ZodError): ApiError {
  const issue = err.issues[0];
  const field = issue?.path.map(String).join('.') ?? '';
  let message = issue?.message ?? 'invalid arguments';
  if (issue?.code === 'unrecognized_keys') {
    return { code: 'invalid-argument', message: `unknown argument "${issue.keys[0]}"`, field: issue.keys[0] };
  }
  if (issue?.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required';
  const limit = issue?.code === 'too_small' ? Number(issue.minimum) : issue?.code === 'too_big' ? Number(issue.maximum) : undefined;
  return {
    code: 'invalid-argument',
    message: field ? `invalid argument "${field}": ${message}` : `invalid arguments: ${message}`,
    reason: message,
    ...(field ? { field } : {}),
    ...(limit !== undefined && Number.isFinite(limit) ? { limit } : {}),
  };
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof CorralError)
    return { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}), ...err.details };
  if (err instanceof z.ZodError) return formatZodError(err);
  if (err instanceof Error) return { code: 'failed', message: err.message };
  try {
    return { code: 'failed', message: String(err) };
  } catch {
    return { code: 'failed', message: 'internal error' }; // e.g. a thrown object with no toString
  }
}

/** An error reply for a message that is not `{id: number, method: string, args?: object}`. */
export function badRequest(id: number, message: string, field?: string): ResponseMessage {
  return { id, error: { code: 'bad-request', message, ...(field ? { field } : {}) } };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks the envelope of a message from any transport. Returns the request, or the error
 * reply to send (echoing the id when it is a usable number, else 0).
 */
export function checkRequest(msg: unknown): RequestMessage | ResponseMessage {
  if (!isPlainObject(msg)) return badRequest(0, `a request must be an object {id, method, args}, not ${describe(msg)}`);
  const id = Number.isSafeInteger(msg.id) ? (msg.id as number) : 0;
  if (!Number.isSafeInteger(msg.id)) return badRequest(0, `"id" must be an integer, not ${describe(msg.id)}`, 'id');
  if (typeof msg.method !== 'string') return badRequest(id, `"method" must be a string, not ${describe(msg.method)}`, 'method');
  if (msg.args !== undefined && !isPlainObject(msg.args))
    return badRequest(id, `"args" must be an object, not ${describe(msg.args)}`, 'args');
  return { id, method: msg.method, args: msg.args };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** What a call names: a VM, a user or a token, for the audit log. */
function targetOf(args: unknown): string | null {
  if (!args || typeof args !== 'object') return null;
  const a = args as Record<string, unknown>;
  for (const k of ['vm', 'name', 'user', 'id']) if (typeof a[k] === 'string') return a[k];
  return null;
}

export class Dispatcher {
  constructor(
    private readonly handlers: Handlers,
    /** Gets every call the role table marks for the audit log, allowed or not. */
    private readonly audit: (rec: AuditRecord) => void = () => undefined,
  ) {}

  /** Never rejects: whatever `msg` is, the answer is a result or an error reply. */
  async handle(session: Session, msg: unknown): Promise<ResponseMessage> {
    const req = checkRequest(msg);
    if ('error' in req || 'result' in req) return req;
    const id = req.id;
    if (!Object.hasOwn(methods, req.method)) {
      return { id, error: { code: 'unknown-method', message: `unknown method "${req.method.slice(0, 100)}"` } };
    }
    const name = req.method as MethodName;
    const res = await this.run(session, name, id, req.args ?? {});
    if (ACCESS[name].audit) {
      const error = 'error' in res ? res.error : null;
      const record = { identity: session.identity, address: session.address, method: name, target: targetOf(req.args), error };
      try {
        this.audit(record);
      } catch {
        // a full disk must not turn a done call into an error; the call happened
      }
    }
    return res;
  }

  private async run(session: Session, name: MethodName, id: number, args: unknown): Promise<ResponseMessage> {
    try {
      // the one place roles are enforced, for every transport: first by method (before a caller
      // who may not call it learns anything of its arguments), then by what the arguments ask
      const role = session.identity.role;
      const denied = (why: string): ResponseMessage => ({ id, error: { code: 'forbidden', message: `${name} ${why}` } });
      const byMethod = forbiddenWhy(role, name);
      if (byMethod) return denied(byMethod);
      // strict: a misspelt option is an error, not silently ignored
      const schema = (methods[name].args as unknown as z.ZodObject).strict();
      const parsed = schema.safeParse(args);
      if (!parsed.success) return { id, error: formatZodError(parsed.error) };
      const byArgs = forbiddenWhy(role, name, parsed.data as never);
      if (byArgs) return denied(byArgs);
      const handler = this.handlers[name] as (a: unknown, s: Session) => Promise<unknown> | unknown;
      const result = await handler(parsed.data, session);
      return { id, result };
    } catch (err) {
      return { id, error: toApiError(err) };
    }
  }

  /** One message as text (a WebSocket frame, a control socket line): not JSON is a bad request too. */
  handleText(session: Session, text: string): Promise<ResponseMessage> {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return Promise.resolve(badRequest(0, 'not JSON'));
    }
    return this.handle(session, msg);
  }
}
