// PUT /api/pools/POOL/files/NAME: an ISO or disk image streamed from the browser into a pool.
// The body is the file itself (Content-Length required); the answer is the stored file with
// the SHA-256 of what arrived, or an API error ({error: {code, message, field, reason}}).
import type http from 'node:http';
import type { ApiError, Identity } from '../core/api/contract.js';
import { toApiError } from '../core/api/dispatcher.js';
import type { Host } from '../core/host/host.js';

const ROUTE = /^\/api\/pools\/([^/]+)\/files\/([^/]+)$/;

export function isUpload(pathname: string): boolean {
  return ROUTE.test(pathname);
}

const STATUS: Record<string, number> = { 'invalid-argument': 400, 'not-found': 404, conflict: 409 };

export async function handleUpload(
  host: Host,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  pathname: string,
  who: { identity: Identity; address: string | null },
): Promise<void> {
  const answer = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };
  if (req.method !== 'PUT') {
    res.setHeader('allow', 'PUT');
    return answer(405, { error: { code: 'bad-request', message: 'uploads are PUT requests' } });
  }
  const [, pool, name] = ROUTE.exec(pathname)!;
  const length = req.headers['content-length'];
  if (length === undefined || !/^\d+$/.test(length)) {
    return answer(411, { error: { code: 'bad-request', message: 'an upload must give its Content-Length' } });
  }
  const audit = (error: ApiError | null) => {
    try {
      host.audit({ ...who, method: 'pool.upload', target: `${pool}/${name}`, error });
    } catch {
      // the upload happened (or failed) whether or not the log can take it
    }
  };
  try {
    const file = await host.vms.pools.upload(decodeURIComponent(pool!), decodeURIComponent(name!), Number(length), req);
    audit(null);
    answer(201, { result: file });
  } catch (err) {
    const error = toApiError(err);
    audit(error);
    // the rest of a refused body is not read: close the connection rather than drain it
    res.setHeader('connection', 'close');
    answer(STATUS[error.code] ?? 500, { error });
  }
}
