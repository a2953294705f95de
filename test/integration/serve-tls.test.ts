// `corral serve` beyond loopback: HTTPS only, with a self-signed certificate made at first start
// whose printed fingerprint is the served one, the Host check on, and the printed token refused
// from the network once users exist. "Beyond loopback" is a private address on a veth pair made
// for the test (as root), or else this machine's own network address.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tempDir } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const data = tempDir();
const link = `crl${process.pid % 100000}`;
let addr = '';
let made = false;
let serve: ServeProcess;

function beyondLoopback(): string {
  const octet = 1 + (process.pid % 250);
  try {
    execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`], { stdio: 'ignore' });
    made = true;
    execFileSync('ip', ['addr', 'add', `10.213.${octet}.1/32`, 'dev', link], { stdio: 'ignore' });
    execFileSync('ip', ['link', 'set', `${link}p`, 'up'], { stdio: 'ignore' });
    execFileSync('ip', ['link', 'set', link, 'up'], { stdio: 'ignore' });
    return `10.213.${octet}.1`;
  } catch {
    const own = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (!own) throw new Error('no address beyond loopback: run as root (ip link) or on a networked machine');
    return own.address;
  }
}

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const mod = url.startsWith('https') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { headers, rejectUnauthorized: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function servedFingerprint(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

function wsStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { rejectUnauthorized: false });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_q, res) => resolve(res.statusCode!));
    ws.once('error', () => resolve(-1));
  });
}

beforeAll(async () => {
  addr = beyondLoopback();
  serve = await ServeProcess.start(data, `${addr}:0`);
});
afterAll(async () => {
  await serve?.stop();
  if (made) execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' });
});

describe('corral serve beyond loopback', () => {
  it('speaks HTTPS with the certificate whose fingerprint it printed', async () => {
    expect(serve.url).toMatch(new RegExp(`^https://${addr.replace(/\./g, '\\.')}:\\d+/#token=`));
    const printed = /TLS certificate SHA-256 fingerprint: ([0-9A-F:]{95})/.exec(serve.out)?.[1];
    expect(printed).toBeTruthy();
    expect(await servedFingerprint(addr, serve.port)).toBe(printed);
    // made at first start in the data dir, its key private
    expect(fs.statSync(path.join(data, 'tls', 'key.pem')).mode & 0o777).toBe(0o600);
  });

  it('answers HTTPS only, with HSTS', async () => {
    const ok = await get(`https://${addr}:${serve.port}/`);
    expect(ok.status).toBe(200);
    expect(ok.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    const plain = await get(`http://${addr}:${serve.port}/`).catch((e: Error) => ({ status: 0, body: e.message }));
    expect(plain.status).not.toBe(200);
  });

  it('keeps the Host check on: the listen address passes, another name does not', async () => {
    expect((await get(`https://${addr}:${serve.port}/`, { host: `evil.example:${serve.port}` })).status).toBe(421);
    expect((await get(`https://${addr}:${serve.port}/`, { host: `${os.hostname()}:${serve.port}` })).status).toBe(200);
  });

  it('takes the printed token from the network only while there are no users', async () => {
    const api = `wss://${addr}:${serve.port}/api?token=${serve.token}`;
    expect(await wsStatus(api)).toBe(101);
    const r = await corral(data, ['user', 'add', 'admin', '--role', 'admin', '--password-stdin'], 'admin-pass-1\n');
    expect(r.code).toBe(0);
    expect(await wsStatus(api)).toBe(401);
    // a login over TLS gets a Secure cookie
    const login = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = https.request(
        `https://${addr}:${serve.port}/api/login`,
        { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
        resolve,
      );
      req.on('error', reject);
      req.end(JSON.stringify({ user: 'admin', password: 'admin-pass-1' }));
    });
    expect(login.statusCode).toBe(200);
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict; Max-Age=\d+; Secure/);
  });

  it('keeps its certificate across restarts', async () => {
    const before = await servedFingerprint(addr, serve.port);
    await serve.stop();
    serve = await ServeProcess.start(data, `${addr}:0`);
    expect(await servedFingerprint(addr, serve.port)).toBe(before);
    expect(serve.out).toMatch(/Users log in at https:/);
  });

  it('names the flag when a given certificate cannot be used', async () => {
    const other = tempDir();
    const r = await corral(other, ['serve', '--listen', `${addr}:0`, '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--tls-cert: cannot read \/nonexistent\.pem: ENOENT/);
  });
});
