import { describe, expect, it } from 'vitest';
import { filterTerminal, TermFilter } from '../../electron/cli/term-filter';
import { prng } from '../support/fuzz-messages';

const f = (s: string | Buffer) => filterTerminal(Buffer.from(s as string, 'utf8')).toString('utf8');
const ESC = '\x1b';
const ST = `${ESC}\\`;

/** Anything a terminal could answer or act on beyond the screen, in filtered output. */
/* eslint-disable no-control-regex -- the point is to find control characters */
function harmful(out: Buffer): string | null {
  const s = out.toString('latin1');
  if (/\x1b[\]PX^_Z]/.test(s)) return 'a string or identify sequence';
  if (s.includes('\x05')) return 'ENQ';
  if (/[\x80-\x9f]/.test(out.toString('utf8'))) return 'a C1 control';
  for (const m of s.matchAll(/\x1b\[([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e])/g)) {
    const [, params, inter, final] = m;
    if (inter || !'mABCDEFGHJKSTfdeaLMP@X`rsuhl'.includes(final!)) return `CSI ${JSON.stringify(m[0])}`;
    if (/^[<=>]/.test(params!) || (params!.startsWith('?') && !'hlJK'.includes(final!))) return `CSI ${JSON.stringify(m[0])}`;
    if (/^\?/.test(params!) && /(^|;)(9|100[0-6]|1015|1016)(;|$)/.test(params!.slice(1))) return `mouse mode ${JSON.stringify(m[0])}`;
  }
  return null;
}
/* eslint-enable no-control-regex */

describe('the terminal filter for guest output', () => {
  it('keeps text, UTF-8, colours and cursor movement as they are', () => {
    const ok = [
      'plain text\r\n\ttab',
      'héllo 中文 😀 © ÿ\u0100',
      `${ESC}[1;31mred${ESC}[0m ${ESC}[38;5;208m${ESC}[48;2;1;2;3mx${ESC}[m`,
      `${ESC}[2J${ESC}[H${ESC}[10;5H${ESC}[3A${ESC}[2B${ESC}[C${ESC}[D${ESC}[K${ESC}[1J${ESC}[5G${ESC}[3d`,
      `${ESC}[?25l${ESC}[?25h${ESC}[?1049h${ESC}[?7l${ESC}[4h${ESC}[1;24r${ESC}[s${ESC}[u`,
      `${ESC}7${ESC}8${ESC}(B${ESC})0${ESC}=${ESC}>${ESC}M\x07\b`,
    ];
    for (const s of ok) expect(f(s), JSON.stringify(s)).toBe(s);
  });

  it.each([
    ['OSC 52 clipboard write (BEL)', `a${ESC}]52;c;aGVsbG8=\x07b`, 'ab'],
    ['OSC 52 clipboard write (ST)', `a${ESC}]52;c;aGVsbG8=${ST}b`, 'ab'],
    ['window title', `${ESC}]0;pwned\x07${ESC}]2;pwned${ST}ok`, 'ok'],
    ['OSC 8 hyperlink', `${ESC}]8;;https://evil.example/${ST}click${ESC}]8;;${ST}`, 'click'],
    ['colour query', `${ESC}]4;1;?\x07${ESC}]11;?${ST}x`, 'x'],
    ['DSR', `${ESC}[6n${ESC}[5n${ESC}[?6nx`, 'x'],
    ['DA', `${ESC}[c${ESC}[0c${ESC}[>c${ESC}[=cx`, 'x'],
    ['window reports and moves', `${ESC}[21t${ESC}[14t${ESC}[3;0;0tx`, 'x'],
    ['DECRQM', `${ESC}[?2004$p${ESC}[4$px`, 'x'],
    ['DECID and ENQ', `${ESC}Z\x05x`, 'x'],
    ['kitty keyboard query', `${ESC}[?u${ESC}[>1ux`, 'x'],
    ['mouse and focus reporting', `${ESC}[?1000h${ESC}[?1006;1000h${ESC}[?1004hx`, 'x'],
    ['DCS (DECRQSS)', `${ESC}P$qm${ST}x`, 'x'],
    ['APC (graphics)', `${ESC}_Gf=100;AAAA${ST}x`, 'x'],
    ['PM and SOS', `${ESC}^private${ST}${ESC}Xstring${ST}x`, 'x'],
    ['C1 OSC in UTF-8', `\u009d52;c;aGk=\u0007x`, 'x'],
    ['C1 OSC ended by C1 ST', `\u009d0;t\u009cx`, 'x'],
    ['C1 DCS and APC', `\u0090$qm\u009c\u009fG\u009cx`, 'x'],
    ['C1 CSI DSR', `\u009b6nx`, 'x'],
    ['a lone C1 control', `\u0085\u008ex`, 'x'],
    ['CAN aborting a sequence', `${ESC}[6\x18n`, 'n'],
  ])('removes %s', (_what, input, want) => {
    expect(f(input)).toBe(want);
  });

  it('sends an 8-bit CSI that is allowed in its 7-bit form', () => {
    expect(f('\u009b31mred')).toBe(`${ESC}[31mred`);
    expect(filterTerminal(Buffer.from([0x9b, 0x33, 0x31, 0x6d, 0x41])).toString('latin1')).toBe(`${ESC}[31mA`);
  });

  it('drops raw 8-bit string introducers', () => {
    expect(filterTerminal(Buffer.from([0x9d, ...Buffer.from('52;c;x'), 0x07, 0x41])).toString()).toBe('A');
  });

  it('gives the same output however the stream is cut, down to single bytes', () => {
    const input = Buffer.from(
      `é${ESC}[1;32mgreen${ESC}[0m ${ESC}]52;c;eA==${ST}中${ESC}[6n\u009d0;t\u0007${ESC}P+q${ST}😀${ESC}(0x${ESC}Z\u009b31m.\u00a9`,
    );
    const whole = filterTerminal(input);
    expect(whole.toString()).toBe(`é${ESC}[1;32mgreen${ESC}[0m 中😀${ESC}(0x${ESC}[31m.\u00a9`);
    for (let i = 0; i <= input.length; i++) {
      const t = new TermFilter();
      expect(Buffer.concat([t.push(input.subarray(0, i)), t.push(input.subarray(i)), t.end()]), `cut at ${i}`).toEqual(whole);
    }
    const t = new TermFilter();
    expect(Buffer.concat([...input].map((b) => t.push(Buffer.from([b]))).concat(t.end()))).toEqual(whole);
  });

  it('lets output through again after a string that never ends', () => {
    const out = f(`${ESC}]52;c;${'A'.repeat(70_000)}`);
    expect(out).not.toContain(ESC);
    expect(out.length).toBeLessThan(70_000);
  });

  it('never lets a harmful sequence through, whatever the bytes (seeded)', () => {
    const seed = 20261130;
    const rand = prng(seed);
    const pieces = [
      ESC,
      '[',
      ']',
      'P',
      '_',
      '^',
      'X',
      'Z',
      '?',
      '>',
      '=',
      ';',
      '$',
      ' ',
      '\x07',
      '\\',
      '\x05',
      '\x18',
      '1',
      '6',
      'n',
      'c',
      't',
      'm',
      'h',
      'u',
      '1000',
    ];
    const c1 = [0x90, 0x98, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xc2, 0xe2, 0x80];
    for (let run = 0; run < 300; run++) {
      const bytes: number[] = [];
      for (let i = 0; i < 200; i++) {
        const r = rand();
        if (r < 0.15) bytes.push(c1[Math.floor(rand() * c1.length)]!);
        else if (r < 0.2) bytes.push(Math.floor(rand() * 256));
        else bytes.push(...Buffer.from(pieces[Math.floor(rand() * pieces.length)]!));
      }
      const input = Buffer.from(bytes);
      const t = new TermFilter();
      const cut = Math.floor(rand() * input.length);
      const out = Buffer.concat([t.push(input.subarray(0, cut)), t.push(input.subarray(cut)), t.end()]);
      expect(harmful(out), `seed ${seed}, run ${run}: ${input.toString('hex')}`).toBeNull();
    }
  });
});
