// The browser every e2e test and UI benchmark drives: Debian's Chromium (or $CHROMIUM_PATH),
// headless, without the background services a closed network refuses. No Chromium is a
// failure with what to do, never a silently skipped test.
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_FEATURES_OFF } from '../electron/core/chromium-features';

export function chromiumPath(): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome-stable',
    '/usr/bin/google-chrome',
  ];
  const found = candidates.find((p): p is string => !!p && fs.existsSync(p));
  if (!found) throw new Error('no Chromium found: install it (bash scripts/setup.sh --dev) or set CHROMIUM_PATH');
  return found;
}

/** `as: 'desktop'` runs it with the Chromium settings of the desktop app (a stand-in for it). */
export function launchChromium(opts: { as?: 'browser' | 'desktop' } = {}): Promise<Browser> {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  if (opts.as === 'desktop') args.push(`--disable-features=${CHROMIUM_FEATURES_OFF.join(',')}`);
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args });
}
