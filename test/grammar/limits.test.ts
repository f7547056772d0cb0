import { describe, expect, it } from 'vitest';
import { DEFAULT_PARSE_LIMITS, parse, WIDEST_PARSE_LIMITS, type ParseLimits, type Predicate } from '../../grammar/index.js';
import { PgError } from '../../src/errors/pg-error.js';
import { predicateSource } from '../../src/engine/rls.js';

/**
 * Statement limits (grammar/limits.ts, SPEC §6): past each one, 54000 or 54001 positioned at
 * the token that went past it (1-based characters, as syntax errors); at each one, a parse.
 * The server-level behaviour (the connection and the server live on) is in
 * test/integration/limits.test.ts.
 */

const POLICY = 'CREATE RLS POLICY p ON o FOR READ USING (';
const policy = (predicate: string) => `${POLICY}${predicate})`;

function refusal(sql: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): PgError {
  try {
    parse(sql, limits);
  } catch (e) {
    if (e instanceof PgError) return e;
    throw new Error(`expected a PgError, got ${String(e)}`);
  }
  throw new Error('expected the statement to be refused');
}

const predicateOf = (sql: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS) =>
  (parse(sql, limits)[0]!.command as { predicate: Predicate }).predicate;

function depth(p: Predicate): number {
  switch (p.kind) {
    case 'and':
    case 'or':
      return 1 + Math.max(depth(p.left), depth(p.right));
    case 'not':
      return 1 + depth(p.expr);
    default:
      return 1;
  }
}

/** The 1-based position of the n-th (1-based) occurrence of `needle` in `text`. */
function nth(text: string, needle: string, n: number): number {
  let at = -1;
  for (let i = 0; i < n; i++) at = text.indexOf(needle, at + 1);
  return at + 1;
}

describe('statement limits', () => {
  it('has defaults a hand-written statement never meets', () => {
    expect(DEFAULT_PARSE_LIMITS).toEqual({
      maxStatementBytes: 1024 * 1024,
      maxStatementTokens: 50_000,
      maxNestingDepth: 100,
      maxPredicateSize: 10_000,
      maxInListLength: 5_000,
    });
  });

  it('refuses parentheses nested past max_nesting_depth with 54001 at the "(" one too deep', () => {
    // USING's own parenthesis is the first level.
    const ok = policy(`${'('.repeat(99)}a = 1${')'.repeat(99)}`);
    expect(depth(predicateOf(ok))).toBe(1);
    const sql = policy(`${'('.repeat(400)}a = 1${')'.repeat(400)}`);
    const e = refusal(sql);
    expect([e.code, e.message, e.position]).toEqual(['54001', 'expression nested more than 100 levels deep', POLICY.length + 100]);
    expect(e.hint).toContain('max_nesting_depth');
    // NOT IN and IS NOT do not nest.
    expect(parse(policy(`${'('.repeat(99)}a IS NOT NULL${')'.repeat(99)}`))).toHaveLength(1);
    expect(parse(policy(`${'('.repeat(98)}b NOT IN (1)${')'.repeat(98)}`))).toHaveLength(1);
    // Parentheses anywhere count, not only in predicates: the parser recurses on every one.
    expect(refusal(`SELECT ${'('.repeat(101)}1${')'.repeat(101)}`).code).toBe('54001');
  });

  it('refuses 100,000 NOTs with 54001 at the NOT one too deep, before scanning the rest', () => {
    const sql = policy(`${'NOT '.repeat(100_000)}a = 1`);
    const e = refusal(sql);
    expect([e.code, e.message, e.position]).toEqual(['54001', 'expression nested more than 100 levels deep', POLICY.length + 1 + 99 * 4]);
    // 99 NOTs inside USING ( ... ) are 100 levels: a NOT chain, not a stack of frames.
    const p = predicateOf(policy(`${'NOT '.repeat(99)}a = 1`));
    expect(depth(p)).toBe(100);
  });

  it('counts NOTs and parentheses together, however they interleave', () => {
    // NOT (NOT (... : each NOT and each "(" is a level (the parser counts these exactly).
    const sql = policy(`${'NOT ('.repeat(60)}a${')'.repeat(60)}`);
    const e = refusal(sql);
    // USING ( is level 1; the 50th "NOT (" pair brings levels 100 and 101: the "(" is refused.
    expect([e.code, e.position]).toEqual(['54001', nth(sql, '(', 51)]);
    const ok = predicateOf(policy(`${'NOT ('.repeat(49)}NOT a${')'.repeat(49)}`));
    expect(depth(ok)).toBe(51);
    // A NOT stays open around its whole operand, words and all.
    const wordy = policy(`${'NOT (a = 1 AND '.repeat(60)}b${')'.repeat(60)}`);
    expect([refusal(wordy).code, refusal(wordy).position]).toEqual(['54001', nth(wordy, '(', 51)]);
  });

  it('refuses a predicate of more than max_predicate_size nodes with 54001 where it went past', () => {
    // a = i: compare + two operands = 3 nodes; each AND one more: n terms = 4n - 1 nodes.
    const chain = (n: number) => Array.from({ length: n }, (_, i) => `a = ${i}`).join(' AND ');
    const ok = predicateOf(policy(chain(2500)));
    // An AND chain is a balanced tree: depth log2 n, so nothing downstream recurses n deep.
    expect(depth(ok)).toBe(13);
    const sql = policy(chain(2501));
    const e = refusal(sql);
    // 2,500 terms and their ANDs are 10,000 nodes; the next term's comparison is one too many.
    expect([e.code, e.message, e.position]).toEqual(['54001', 'RLS predicate has more than 10000 terms', sql.indexOf('a = 2500') + 1]);
  });

  it('refuses a 100,000-term AND chain with 54001 at the first token past max_statement_tokens', () => {
    const terms = Array.from({ length: 100_000 }, (_, i) => `a = ${i}`);
    const sql = policy(terms.join(' AND '));
    const e = refusal(sql);
    expect([e.code, e.message]).toEqual(['54001', 'statement has more than 50000 tokens']);
    // Where token 50,001 starts: every word, number, "(" and "=" is one.
    const offsets: number[] = [];
    const re = /[A-Za-z_]+|\d+|[()=]/g;
    for (let m = re.exec(sql); m && offsets.length <= 50_000; m = re.exec(sql)) offsets.push(m.index);
    expect(e.position).toBe(offsets[50_000]! + 1);
  });

  it('refuses an IN list longer than max_in_list_length with 54000 at its first item too many', () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `'v${i}'`).join(', ');
    expect((predicateOf(policy(`a IN (${list(5000)})`)) as { list: unknown[] }).list).toHaveLength(5000);
    const sql = policy(`a IN (${list(5001)})`);
    const e = refusal(sql);
    expect([e.code, e.message, e.position]).toEqual(['54000', 'IN list has more than 5000 items', sql.indexOf("'v5000'") + 1]);
    expect(e.hint).toContain('max_in_list_length');
  });

  it('refuses a 7 MB IN list before scanning it all, with a position', () => {
    const sql = policy(`a IN (${Array.from({ length: 700_000 }, (_, i) => `'v${i}'`).join(', ')})`);
    expect(sql.length).toBeGreaterThan(7_000_000);
    const e = refusal(sql);
    expect(['54000', '54001']).toContain(e.code);
    expect(e.position).toBeGreaterThan(0);
  });

  it('refuses a statement of more than max_statement_bytes UTF-8 bytes with 54000 at its first token', () => {
    const MiB = 1024 * 1024;
    const head = "SELECT '";
    const exactly = `${head}${'x'.repeat(MiB - head.length - 1)}'`;
    expect(Buffer.byteLength(exactly)).toBe(MiB);
    expect(parse(exactly)).toHaveLength(1);
    const e = refusal(`${exactly} `);
    expect([e.code, e.message, e.position]).toEqual(['54000', 'statement is larger than 1048576 bytes', 1]);
    // Bytes, not characters: é is two bytes of UTF-8.
    const accented = `${head}${'é'.repeat(MiB / 2)}'`;
    expect(accented.length).toBeLessThan(MiB);
    expect(refusal(accented).code).toBe('54000');
    // Per statement: the second statement of a text is refused at its own first token.
    const two = `SELECT 1;\n  ${exactly}x`;
    expect(refusal(two).position).toBe('SELECT 1;\n  '.length + 1);
    // A text of many statements may be larger than the limit.
    expect(parse('SELECT 1; '.repeat(110_000))).toHaveLength(110_000);
    // A string that runs past the limit unterminated is "too large", not "unterminated".
    expect(refusal(`SELECT '${'x'.repeat(2 * MiB)}`).code).toBe('54000');
    // ... but one that ends within it is still a syntax error.
    expect(refusal("SELECT 'abc").code).toBe('42601');
  });

  it('takes the limits it is given, and keeps no parse across different limits', () => {
    const tight: ParseLimits = { maxStatementBytes: 1024, maxStatementTokens: 100, maxNestingDepth: 3, maxPredicateSize: 10, maxInListLength: 2 };
    // Four levels: USING's parenthesis and three more. Kept by the default limits' parses...
    const sql = policy('(((a = 1)))');
    expect(parse(sql)).toHaveLength(1);
    // ... and still refused under tighter ones.
    expect(refusal(sql, tight).code).toBe('54001');
    expect(refusal(policy('a IN (1, 2, 3)'), tight).position).toBe(POLICY.length + 'a IN (1, 2, '.length + 1);
    expect(refusal(policy('a = 1 AND b = 2 AND c = 3'), tight).code).toBe('54001');
    expect(refusal(`DROP USER ${Array.from({ length: 60 }, (_, i) => `u${i}`).join(', ')}`, tight).message).toBe('statement has more than 100 tokens');
    expect(refusal(`SELECT '${'x'.repeat(1100)}'`, tight).code).toBe('54000');
  });

  it('counts positions in characters after a surrogate pair, past the limit too', () => {
    const sql = policy(`b = '😀' AND a IN (${Array.from({ length: 5001 }, (_, i) => i).join(', ')})`);
    const e = refusal(sql);
    expect(e.code).toBe('54000');
    // The emoji is two UTF-16 code units and one character.
    expect(e.position).toBe(sql.indexOf(' 5000') + 1);
  });

  it('ends a stack overflow as 54001 "stack depth limit exceeded", never as a RangeError', () => {
    // The widest configurable nesting is deeper than the stack holds: the last line of defence.
    const sql = policy(`${'('.repeat(999)}a = 1${')'.repeat(999)}`);
    const e = refusal(sql, WIDEST_PARSE_LIMITS);
    expect([e.code, e.message]).toEqual(['54001', 'stack depth limit exceeded']);
    // At the "(" where the parser's stack ran out.
    expect(sql[e.position! - 1]).toBe('(');
    expect(e.position).toBeGreaterThan(POLICY.length + 100);
    // The parser is whole again afterwards.
    expect(parse(policy('(a = 1)'))).toHaveLength(1);
  });

  it('renders a balanced chain as it was written, and parses the rendering to the same tree', () => {
    const sql = policy(Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? `(a = ${i} OR b = ${i})` : `NOT c = ${i}`)).join(' AND '));
    const p = predicateOf(sql);
    const text = predicateSource(p);
    expect(text).toBe(sql.slice(POLICY.length, -1));
    expect(predicateSource(predicateOf(policy(text)))).toBe(text);
  });
});
