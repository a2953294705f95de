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

/** One client connection. Handlers use it to push events to that client only. */
export class Session {
  private closers: Array<() => void> = [];
  closed = false;

  constructor(
    readonly label: string,
    private readonly sink: (event: EventName, payload: unknown) => void,
    /** Bytes queued towards this client and not yet sent, where the transport knows (for backpressure). */
    readonly backlog: () => number = () => 0,
  ) {}

  send<E extends EventName>(event: E, payload: EventMap[E]): void {
    if (!this.closed) this.sink(event, payload);
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
  return { code: 'failed', message: err instanceof Error ? err.message : String(err) };
}

export class Dispatcher {
  constructor(private readonly handlers: Handlers) {}

  async handle(session: Session, msg: RequestMessage): Promise<ResponseMessage> {
    const id = msg.id;
    if (typeof msg.method !== 'string' || !Object.hasOwn(methods, msg.method)) {
      return { id, error: { code: 'unknown-method', message: `unknown method "${String(msg.method)}"` } };
    }
    const name = msg.method as MethodName;
    // strict: a misspelt option is an error, not silently ignored
    const schema = (methods[name].args as unknown as z.ZodObject).strict();
    const parsed = schema.safeParse(msg.args ?? {});
    if (!parsed.success) return { id, error: formatZodError(parsed.error) };
    try {
      const handler = this.handlers[name] as (a: unknown, s: Session) => Promise<unknown> | unknown;
      const result = await handler(parsed.data, session);
      return { id, result };
    } catch (err) {
      return { id, error: toApiError(err) };
    }
  }
}
