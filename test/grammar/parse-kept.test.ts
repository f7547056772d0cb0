import { describe, expect, it } from 'vitest';
import { parse } from '../../grammar/index.js';

/**
 * A text parsed before is not parsed again: the same frozen statements come back. Texts
 * that could hold a secret (a string literal, a key) are never kept.
 */
describe('parsed texts kept', () => {
  it('gives the same frozen statements for the same text', () => {
    const a = parse('GRANT crew TO kept_1; SHOW AUTH');
    const b = parse('GRANT crew TO kept_1; SHOW AUTH');
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a[0]!.command)).toBe(true);
    expect(parse('GRANT crew TO kept_2')).not.toBe(a);
  });

  it('keeps no text with a string literal or a key in it', () => {
    for (const text of [
      "CREATE USER kept_3 PASSWORD 'not-kept-Secret-1'",
      'CREATE USER kept_4 PASSWORD $$not-kept-Secret-2$$',
      'DROP API KEY pcu_0123456789abcdef',
    ]) {
      const a = parse(text);
      expect(parse(text)).not.toBe(a);
      expect(Object.isFrozen(a)).toBe(false);
    }
  });
});
