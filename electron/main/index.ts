// The desktop app: hosts the core in Electron's main process, shows the UI in a sandboxed
// window and moves API calls over IPC. Closing the window leaves the host (and with it the
// supervision of guests) running in the tray; guests themselves run detached either way.
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  net,
  Notification,
  protocol,
  session,
  shell,
  Tray,
  type WebContents,
} from 'electron';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EventName } from '../core/api/contract.js';
import type { Session } from '../core/api/dispatcher.js';
import { Host } from '../core/host/host.js';
import { keepServingOnErrors } from '../core/host/last-resort.js';
import { defaultDataDir } from '../core/paths.js';
import { CHROMIUM_FEATURES_OFF } from '../core/chromium-features.js';
import { CSP, requestUrl } from '../core/security.js';
import { checkPin, fingerprintOfPem } from './cert-pins.js';

const SCHEME = 'corral';
const APP_ORIGIN = `${SCHEME}://app`;
const rendererDir = path.join(__dirname, '..', '..', 'renderer');

protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
// a console's echo should show as soon as it arrives (see chromium-features)
app.commandLine.appendSwitch('disable-features', CHROMIUM_FEATURES_OFF.join(','));

let host: Host | null = null;
let win: BrowserWindow | null = null;
let tray: Tray | null = null;
let quitting = false;
const sessions = new Map<WebContents, Session>();

/**
 * `--connect URL`: this window becomes a client of a headless `corral serve` (the URL it
 * printed, with its token) instead of hosting VMs itself. The remote page gets no preload:
 * it talks to its own host over WebSocket, like any browser.
 */
function remoteFromArgs(): URL | null {
  const i = process.argv.indexOf('--connect');
  if (i < 0) return null;
  const url = new URL(process.argv[i + 1] ?? '');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('--connect needs the http(s) URL printed by corral serve');
  return url;
}

function dataDirFromArgs(): string {
  const i = process.argv.indexOf('--data');
  return i > 0 && process.argv[i + 1] ? path.resolve(process.argv[i + 1]!) : defaultDataDir();
}

/** The Electron-ABI build of better-sqlite3 made by scripts/electron-native.mjs, in a checkout. */
function sqliteBinding(): string | undefined {
  const p = path.join(app.getAppPath(), 'node_modules', '.corral-electron', process.versions.electron, 'better_sqlite3.node');
  return fs.existsSync(p) ? p : undefined; // packaged apps are rebuilt for Electron by electron-builder
}

function serveApp(): void {
  protocol.handle(SCHEME, async (req) => {
    const { pathname } = new URL(req.url);
    const file = path.join(rendererDir, path.normalize(decodeURIComponent(pathname === '/' ? '/index.html' : pathname)));
    if (!file.startsWith(rendererDir + path.sep)) return new Response('not found', { status: 404 });
    const res = await net.fetch(pathToFileURL(file).toString());
    const headers = new Headers(res.headers);
    headers.set('content-security-policy', CSP);
    headers.set('x-content-type-options', 'nosniff');
    return new Response(res.body, { status: res.status, headers });
  });
}

function isAppFrame(url: string | undefined): boolean {
  return !!url && url.startsWith(`${APP_ORIGIN}/`);
}

function wireIpc(): void {
  ipcMain.handle('corral:call', async (event, msg: unknown) => {
    // only our own page may drive the host
    if (!isAppFrame(event.senderFrame?.url)) throw new Error('refused: not the Corral window');
    if (!host) return { id: 0, error: { code: 'failed', message: 'the host is not running' } };
    const wc = event.sender;
    let s = sessions.get(wc);
    if (!s) {
      s = host.session('ipc', (name: EventName, payload: unknown) => {
        if (!wc.isDestroyed()) wc.send('corral:event', { event: name, payload });
      });
      sessions.set(wc, s);
      wc.once('destroyed', () => {
        sessions.get(wc)?.close();
        sessions.delete(wc);
      });
    }
    return host.dispatcher.handle(s, msg); // checks the message's shape: the page is not trusted to send a good one
  });
}

function createWindow(remote: URL | null = null): void {
  if (win) {
    win.show();
    win.focus();
    return;
  }
  const allowed = (url: string) => (remote ? new URL(url).origin === remote.origin : isAppFrame(url));
  win = new BrowserWindow({
    width: 1200,
    height: 800,
    minWidth: 720,
    minHeight: 480,
    title: 'Corral',
    show: false,
    backgroundColor: '#1e1f22',
    webPreferences: {
      ...(remote ? {} : { preload: path.join(__dirname, '..', 'preload', 'index.js') }),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win?.show());
  win.webContents.on('will-navigate', (e, url) => {
    if (!allowed(url)) e.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.on('close', (e) => {
    // keep supervising in the tray; quit from the tray or the menu
    if (!quitting && tray) {
      e.preventDefault();
      win?.hide();
    }
  });
  win.on('closed', () => (win = null));
  void win.loadURL(remote ? remote.toString() : `${APP_ORIGIN}/index.html`);
}

function createTray(): void {
  const icon = nativeImage.createFromPath(path.join(app.getAppPath(), 'build', 'icons', '32x32.png'));
  try {
    tray = new Tray(icon);
  } catch {
    tray = null; // no status area on this desktop: closing the window quits
    return;
  }
  tray.setToolTip('Corral');
  tray.setContextMenu(
    Menu.buildFromTemplate([
      { label: 'Show Corral', click: () => createWindow() },
      { type: 'separator' },
      { label: 'Quit Corral…', click: () => void requestQuit() },
    ]),
  );
  tray.on('click', () => createWindow());
}

/**
 * Quitting follows the host setting: leave guests running (they are detached; the next start
 * reattaches them), shut them down, or ask. Asking offers to remember the answer.
 */
async function requestQuit(): Promise<void> {
  if (quitting || !host) return quit(false);
  const running = host.vms.registry.size;
  const setting = host.settings.get().quitAction;
  if (running === 0 || setting === 'leave-running') return quit(false);
  if (setting === 'stop-guests') return quit(true);
  const opts = {
    type: 'question' as const,
    buttons: ['Leave running', 'Shut down guests', 'Cancel'],
    defaultId: 0,
    cancelId: 2,
    title: 'Quit Corral',
    message: `${running} virtual machine${running === 1 ? ' is' : 's are'} running.`,
    detail:
      'Guests left running keep working; Corral picks them up again at its next start. While Corral is not running, crashed guests are not restarted.',
    checkboxLabel: 'Remember my choice',
  };
  const r = win && !win.isDestroyed() && win.isVisible() ? await dialog.showMessageBox(win, opts) : await dialog.showMessageBox(opts);
  if (r.response === 2) return;
  if (r.checkboxChecked) host.settings.set({ quitAction: r.response === 0 ? 'leave-running' : 'stop-guests' });
  return quit(r.response === 1);
}

async function quit(stopGuests: boolean): Promise<void> {
  if (quitting) return;
  quitting = true;
  try {
    await host?.close({ stopGuests });
  } finally {
    host = null;
    app.quit();
  }
}

/**
 * noVNC speaks WebSocket, so the desktop app bridges graphical consoles on a loopback port of
 * its own. Only our window's origin and a one-shot ticket from the API get through.
 */
async function serveConsoles(h: Host): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    const pathname = requestUrl(req.url)?.pathname;
    if (pathname !== '/vnc' || req.headers.origin !== APP_ORIGIN) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    h.vncProxy.handleUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  app.once('will-quit', () => server.close());
  return `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/**
 * A `corral serve` over HTTPS usually has a self-signed certificate: trust the one it shows
 * first, and refuse (with a clear message) a different one later.
 */
function pinCertificate(remote: URL): void {
  const file = path.join(app.getPath('userData'), 'certificate-pins.json');
  let refused = false;
  session.defaultSession.setCertificateVerifyProc((req, cb) => {
    if (req.hostname.toLowerCase() !== remote.hostname.toLowerCase()) return cb(-3); // Chromium decides
    let decision;
    try {
      decision = checkPin(file, remote.host, fingerprintOfPem(req.certificate.data));
    } catch (err) {
      decision = { ok: false as const, message: `Cannot check the certificate of ${remote.host}: ${(err as Error).message}` };
    }
    if (decision.ok) return cb(0);
    cb(-2);
    if (!refused) dialog.showErrorBox('Corral refused the connection', decision.message);
    refused = true;
  });
}

async function boot(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('second-instance', () => createWindow());
  await app.whenReady();
  session.defaultSession.setPermissionRequestHandler((_wc, permission, cb) =>
    cb(permission === 'notifications' || permission === 'clipboard-sanitized-write' || permission === 'fullscreen'),
  );
  let remote: URL | null;
  try {
    remote = remoteFromArgs();
  } catch (err) {
    dialog.showErrorBox('Corral cannot connect', (err as Error).message);
    app.exit(2);
    return;
  }
  if (remote) {
    if (remote.protocol === 'https:') pinCertificate(remote);
    createWindow(remote);
    app.on('window-all-closed', () => app.quit());
    return;
  }
  serveApp();
  wireIpc();
  try {
    host = await Host.start({
      dataDir: dataDirFromArgs(),
      kind: 'desktop app',
      nativeBinding: sqliteBinding(),
      log: (s) => console.warn(s),
      defaults: { hostShell: true, monitor: true },
    });
    host.setConsoleBase(await serveConsoles(host));
    keepServingOnErrors((s) => console.error(s));
  } catch (err) {
    dialog.showErrorBox('Corral cannot start', (err as Error).message);
    app.exit(1);
    return;
  }
  createTray();
  createWindow();
  host.vms.journal.on('notify', (n) => {
    if (Notification.isSupported()) {
      const note = new Notification({ title: n.title, body: n.body, urgency: n.level === 'error' ? 'critical' : 'normal' });
      note.on('click', () => createWindow());
      note.show();
    }
  });
  app.on('window-all-closed', () => {
    if (!tray) void requestQuit();
  });
  app.on('before-quit', (e) => {
    if (!quitting) {
      e.preventDefault();
      void requestQuit();
    }
  });
}

void boot();
