import { describe, expect, it } from 'vitest';
import { saslprep } from '../../src/auth/saslprep.js';

/**
 * What PostgreSQL's pg_saslprep makes of each password (checked against a real PostgreSQL
 * server's verifiers in test/auth/postgres-verifiers.test.ts): the prepared string, or the
 * password itself where SASLprep fails and PostgreSQL hashes it raw.
 */
describe('SASLprep as PostgreSQL applies it', () => {
  it('prepares: maps spaces, drops B.1 characters, normalizes NFKC', () => {
    expect(saslprep('correct\u00A0horse')).toBe('correct horse');
    expect(saslprep('zero\u200Bwidth-ü')).toBe('zero width-ü'); // U+200B: C.1.2 wins over B.1
    expect(saslprep('I\u00ADX')).toBe('IX');
    expect(saslprep('ｐａｓｓ\uFB01①')).toBe('passfi1');
    expect(saslprep('مرحبا\u00A0بالعالم')).toBe('مرحبا بالعالم'); // right-to-left only: the bidi rule holds
    expect(saslprep('\u05D0\u2122\u05D0')).toBe('\u05D0TM\u05D0'); // ™ is not LCat before NFKC, where PostgreSQL checks
  });

  it('hashes raw what fails: the bidi rule, prohibited and unassigned code points, an empty result', () => {
    for (const raw of [
      'שלום\u00A0world', // RandALCat with LCat
      'שלום\u00AD123', // RandALCat string ending in a digit
      'pass\uFFFD\u00A0word', // C.6
      '\u1D2Cdmin\u00A0pw', // A.1 (unassigned in Unicode 3.2), though NFKC would make it "A"
      'e\u0340\u00A0x', // C.8, though NFKC would make it U+0300
      '\uE000\u00A0key', // C.3
      '\u00AD\u200C', // nothing left after mapping
      'a\u0007\u00E9', // C.2.1
    ]) {
      expect(saslprep(raw)).toBe(raw);
    }
  });

  it('leaves ASCII alone, control characters included, as PostgreSQL does', () => {
    expect(saslprep('pencil')).toBe('pencil');
    expect(saslprep('tab\there')).toBe('tab\there');
  });

  it('handles a long password (no argument-count limit)', () => {
    expect(saslprep('\u00E9'.repeat(200_000))).toBe('\u00E9'.repeat(200_000));
  });
});
