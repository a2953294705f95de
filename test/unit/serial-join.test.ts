// The page's join of the serial scrollback and the live stream, by position.
import { describe, expect, it } from 'vitest';
import { StreamJoin } from '../../renderer/src/lib/serial-join';

const b = (s: string) => new TextEncoder().encode(s);
const str = (u: Uint8Array) => new TextDecoder().decode(u);

describe('StreamJoin', () => {
  it('drops live output the scrollback already showed, and keeps the rest of a chunk that straddles its end', () => {
    const j = new StreamJoin(10); // the log showed positions 0..9
    expect(str(j.take(b('6789'), 6).show)).toBe(''); // entirely shown already
    const r = j.take(b('89AB'), 8);
    expect(str(r.show)).toBe('AB');
    expect(r.missed).toBe(0);
    expect(str(j.take(b('CD'), 12).show)).toBe('CD');
  });

  it('reports a jump ahead as missed output, then goes on from there', () => {
    const j = new StreamJoin(100);
    const r = j.take(b('xyz'), 150);
    expect(r).toEqual({ show: b('xyz'), missed: 50 });
    expect(j.take(b('!'), 153)).toEqual({ show: b('!'), missed: 0 });
  });
});
