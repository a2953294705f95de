// The packaged desktop app's Electron fuses, read from the electron-builder config and turned
// into the fuse wire by the installed electron-builder's own code (what `npm run dist` flips).
// The Electron binary itself is not needed: the fuses are flipped in it at packaging.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const root = path.join(__dirname, '..', '..');
const build = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { build: Record<string, unknown> }).build;
const fuses = build.electronFuses as Record<string, boolean>;

describe('Electron fuses at packaging', () => {
  it('sets each fuse that closes a way to run other code in the app', () => {
    expect(fuses).toEqual({
      // ELECTRON_RUN_AS_NODE would make the app a plain Node for anyone who can set its env
      runAsNode: false,
      // NODE_OPTIONS (--require) and --inspect would inject code into the main process
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      // only the packaged (and, where supported, integrity-checked) app.asar is loaded
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
      // the UI is served from corral://, never file://
      grantFileProtocolExtraPrivileges: false,
    });
    expect(build.asar).toBe(true); // onlyLoadAppFromAsar needs an app.asar
  });

  it('uses option names the installed electron-builder knows, and they map to the right fuse wire', async () => {
    const scheme = require(path.join(root, 'node_modules', 'app-builder-lib', 'scheme.json')) as {
      definitions: { FuseOptionsV1: { properties: Record<string, unknown> } };
    };
    for (const name of Object.keys(fuses)) expect(Object.keys(scheme.definitions.FuseOptionsV1.properties)).toContain(name);
    const { PlatformPackager } = require('app-builder-lib') as {
      PlatformPackager: { prototype: { generateFuseConfig(f: unknown): Promise<Record<string, unknown>> } };
    };
    const wire = await PlatformPackager.prototype.generateFuseConfig.call({}, fuses);
    const { FuseV1Options, FuseVersion } = require('@electron/fuses') as typeof import('@electron/fuses');
    expect(wire.version).toBe(FuseVersion.V1);
    expect(wire[FuseV1Options.RunAsNode]).toBe(false);
    expect(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(false);
    expect(wire[FuseV1Options.EnableNodeCliInspectArguments]).toBe(false);
    expect(wire[FuseV1Options.OnlyLoadAppFromAsar]).toBe(true);
    expect(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(true);
    expect(wire[FuseV1Options.GrantFileProtocolExtraPrivileges]).toBe(false);
  });

  it('the desktop app needs none of what the fuses turn off', () => {
    // RunAsNode off breaks child_process.fork and ELECTRON_RUN_AS_NODE in the main process
    const main = fs.readdirSync(path.join(root, 'electron'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    for (const f of main) {
      const src = fs.readFileSync(path.join(root, 'electron', f), 'utf8');
      expect(src, f).not.toMatch(/ELECTRON_RUN_AS_NODE|\bfork\(|file:\/\/[^'"`]*index\.html/);
    }
  });
});
