// What a guest prints reaches the user's terminal through `corral vm log` and `vm console`:
// escape sequences that act beyond the screen (clipboard, title, terminal queries) are taken
// out unless --raw is given. A real guest prints them on its serial console.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir, waitFor } from '../helpers';
import { consoleSession, corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess;
const NAME = 'printer';
// OSC 52 (clipboard), OSC 0 (title), OSC 8 (link), DSR and DA around text in colour
const PRINTF = String.raw`printf 'A\033]52;c;aGk=\007B\033]0;pwned\007\033]8;;http://x/\033\\L\033]8;;\033\\\033[6n\033[c\033[31mRED\033[0m END-%s\n' 42`;

beforeAll(async () => {
  serve = await ServeProcess.start(data);
  const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet', '--memory', '128M'];
  expect((await corral(data, ['vm', 'create', NAME, ...boot])).code).toBe(0);
  expect((await corral(data, ['vm', 'start', NAME])).code).toBe(0);
  await waitFor('the guest prompt', async () => (await corral(data, ['vm', 'log', NAME])).stdout.includes(FIXTURE.prompt), BOOT_MS, 250);
});

afterAll(async () => {
  await corral(data, ['vm', 'kill', NAME]);
  await serve?.stop();
  fs.rmSync(data, { recursive: true, force: true });
});

describe('guest output on the terminal', () => {
  it('vm console shows colours but not the clipboard, title, link or queries; --raw shows all', async () => {
    const filtered = await consoleSession(data, NAME, PRINTF, /END-42/);
    expect(filtered.out).toContain('\x1b[31mRED\x1b[0m END-42');
    expect(filtered.out).toContain('ABL');
    expect(filtered.out).not.toContain('\x1b]');
    expect(filtered.out).not.toContain('\x1b[6n');
    expect(filtered.out).not.toContain('\x1b[c');
    const raw = await consoleSession(data, NAME, PRINTF.replace('42', '43'), /END-43/, ['--raw']);
    expect(raw.out).toContain('\x1b]52;c;aGk=\x07');
    expect(raw.out).toContain('\x1b[6n');
  });

  it('vm log leaves them out too, and --raw keeps them', async () => {
    const log = await corral(data, ['vm', 'log', NAME]);
    expect(log.code).toBe(0);
    expect(log.stdout).toContain('\x1b[31mRED\x1b[0m END-42');
    expect(log.stdout).not.toContain('\x1b]');
    expect(log.stdout).not.toContain('\x1b[6n');
    const raw = await corral(data, ['vm', 'log', NAME, '--raw']);
    expect(raw.stdout).toContain('\x1b]52;c;aGk=\x07');
    expect(raw.stdout).toContain('\x1b]0;pwned\x07');
    expect(raw.stdout).toContain('\x1b[6n');
  });
});
