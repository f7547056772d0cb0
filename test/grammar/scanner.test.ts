import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateMixed } from '../../bench/parser.js';
import { scan } from '../../grammar/scanner.js';
import { referenceTokenize } from '../../grammar/tokens.js';
import { ROOT } from '../support/server.js';

/** A script's lines without COPY ... FROM stdin data (rows for PostgreSQL, up to `\.`: not SQL). */
function withoutCopyData(lines: string[]): string[] {
  let copying = false;
  return lines.filter((l) => {
    if (copying) {
      copying = l !== '\\.';
      return false;
    }
    copying = /\bFROM\s+stdin\s*;\s*$/i.test(l);
    return true;
  });
}

/** The scanner must produce exactly what Chevrotain's lexer makes of the same token patterns. */
const corpus: [string, string][] = [
  ['bench', generateMixed(2000)],
  ...readdirSync(path.join(ROOT, 'fixtures'))
    .filter((f) => f.endsWith('.sql'))
    .map((f): [string, string] => [
      f,
      withoutCopyData(readFileSync(path.join(ROOT, 'fixtures', f), 'utf8').split('\n'))
        .filter((l) => !l.startsWith('\\'))
        .join('\n'),
    ]),
  ['edge cases', `E'a\\'b' $$x$$ $t$y$t$ "q""q" 'it''s' 1.5e-3 .5 7. a::int <> != <= >= < > $12 $AUTH.Claims.x /* a /* b */ c */ -- end`],
];

/** Keywords compare case-insensitively: the scanner gives them their canonical spelling. */
const shape = (toks: { image: string; startOffset: number; tokenType: { name: string } }[]) =>
  toks.map((t) => `${t.tokenType.name}@${t.startOffset}:${t.tokenType.name === t.image.toUpperCase() ? t.image.toUpperCase() : t.image}`);

describe('scanner', () => {
  it.each(corpus)('matches the reference lexer on %s', (_name, text) => {
    const mine = scan(text);
    const ref = referenceTokenize(text);
    expect(mine.error).toBeNull();
    expect(ref.errors).toEqual([]);
    expect(shape(mine.tokens)).toEqual(shape(ref.tokens));
  });

  it.each([
    ["'open", 0],
    ['"open', 0],
    ['x /* open', 2],
    ['$tag$ open', 0],
    ['a ? b', 2],
    ['a : b', 2],
  ])('reports where %j stops making sense', (text, offset) => {
    expect(scan(text).error?.offset).toBe(offset);
  });
});
