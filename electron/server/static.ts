// Serves the built UI. Only files under its directory, only GET/HEAD, with a strict CSP.
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { CSP } from '../core/security.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

export function serveStatic(root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers = {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, allow: 'GET, HEAD' }).end();
    return;
  }
  let rel: string;
  try {
    rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    res.writeHead(400, headers).end();
    return;
  }
  const file = path.join(root, path.normalize(rel === '/' ? '/index.html' : rel));
  if (!file.startsWith(root + path.sep) || rel.includes('\0')) {
    res.writeHead(404, headers).end();
    return;
  }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      if (!fs.existsSync(path.join(root, 'index.html'))) {
        res.writeHead(503, { ...headers, 'content-type': 'text/plain' }).end('The UI is not built: run `npm run build`.\n');
        return;
      }
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('Not found\n');
      return;
    }
    const immutable = rel.startsWith('/assets/');
    res.writeHead(200, {
      ...headers,
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': st.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
}
