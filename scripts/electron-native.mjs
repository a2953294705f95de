#!/usr/bin/env node
// Builds better-sqlite3 for Electron's ABI beside Node's own build, so one checkout runs both
// `npm test` (Node) and `npm start` (Electron) with no manual rebuild and no swapping.
// The Electron main process loads this copy through better-sqlite3's `nativeBinding` option.
// (node-pty uses N-API, whose binary works under both runtimes unchanged. better-sqlite3 13 does too, and
// ships Node-API prebuilds; its binding.gyp then builds nothing unless told to with force_build=1.)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const electronVersion = require('electron/package.json').version;
const outDir = path.join(root, 'node_modules', '.corral-electron', electronVersion);
const target = path.join(outDir, 'better_sqlite3.node');

if (fs.existsSync(target)) process.exit(0);

const pkgDir = path.dirname(require.resolve('better-sqlite3/package.json'));
// inside node_modules, so that binding.gyp's require('node-addon-api') resolves wherever npm put it
fs.mkdirSync(path.dirname(outDir), { recursive: true });
const work = fs.mkdtempSync(path.join(path.dirname(outDir), 'build-'));
console.log(`Building better-sqlite3 for Electron ${electronVersion} (once)…`);
try {
  fs.cpSync(pkgDir, work, {
    recursive: true,
    filter: (p) => !p.includes(`${path.sep}build${path.sep}`) && !p.endsWith(`${path.sep}build`),
  });
  const env = { ...process.env };
  // npm exports nodedir for Node's headers; Electron's come from its own header tarball
  for (const k of Object.keys(env)) if (/^npm_config_(nodedir|target|runtime|disturl|dist_url)$/i.test(k)) delete env[k];
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  execFileSync(
    process.execPath,
    [
      nodeGyp,
      'rebuild',
      '--release',
      '--force_build=1',
      `--target=${electronVersion}`,
      '--runtime=electron',
      '--dist-url=https://electronjs.org/headers',
    ],
    { cwd: work, env, stdio: 'inherit' },
  );
  fs.mkdirSync(outDir, { recursive: true });
  fs.copyFileSync(path.join(work, 'build', 'Release', 'better_sqlite3.node'), target);
} catch (err) {
  console.error(`Could not build better-sqlite3 for Electron: ${err.message}`);
  process.exit(1);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
