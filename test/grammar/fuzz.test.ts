import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PARSE_LIMITS, parse, WIDEST_PARSE_LIMITS, type ParseLimits, type Predicate, type Statement } from '../../grammar/index.js';
import { PgError } from '../../src/errors/pg-error.js';
import { predicateSource } from '../../src/engine/rls.js';
import { ROOT } from '../support/server.js';
import { rng } from '../support/rng.js';

/**
 * Grammar fuzzer: statements from the golden fixtures, mutated (tokens dropped, doubled,
 * swapped, replaced by keywords and punctuation; bytes flipped; cut short) and generated
 * (random token sequences). Every input must parse or fail with a PgError — never another
 * exception, never a hang (the test timeout). FUZZ_INPUTS and FUZZ_SEED as for the wire fuzzer.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 100_000);

const corpus = readdirSync(path.join(ROOT, 'fixtures'))
  .filter((f) => f.endsWith('.sql'))
  .flatMap((f) => readFileSync(path.join(ROOT, 'fixtures', f), 'utf8').split(/;\s*\n/))
  .map((s) => s.replace(/^--.*$/gm, '').trim())
  .filter((s) => s.length > 0 && !s.startsWith('\\'));

const WORDS = [
  'CREATE', 'ALTER', 'DROP', 'SHOW', 'GRANT', 'REVOKE', 'USER', 'ROLE', 'TENANT', 'DATABASE', 'API', 'KEY', 'SERVICE', 'ACCOUNT',
  'OIDC', 'PROVIDER', 'RLS', 'POLICY', 'ON', 'TO', 'FROM', 'FOR', 'WITH', 'PASSWORD', 'VALID', 'UNTIL', 'INTERVAL', 'USING', 'AND',
  'OR', 'NOT', 'IN', 'IS', 'NULL', 'TRUE', 'SELECT', 'SET', 'SESSION', 'AUTHORIZATION', 'JWT', 'CLAIMS', 'IMPORT', 'EXPLAIN',
  '(', ')', ',', ';', '.', '=', '<>', '$1', '$auth.id', "'x'", "'", '"', '"q', '0', '-1', '99999999999999999999', '::', '/*', '*/', '--', '\\0', 'é', '\u0000',
];

function mutate(s: string, r: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const tokens = s.split(/(\s+)/);
  const at = () => Math.floor(r() * tokens.length);
  const kind = r();
  if (kind < 0.2) tokens.splice(at(), 1);
  else if (kind < 0.35) tokens.splice(at(), 0, pick(WORDS), ' ');
  else if (kind < 0.5) tokens[at()] = pick(WORDS);
  else if (kind < 0.6) {
    const i = at();
    const j = at();
    [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
  } else if (kind < 0.7) {
    const i = at();
    tokens.splice(i, 0, ...tokens.slice(i, i + 1 + Math.floor(r() * 4)));
  } else if (kind < 0.8) {
    const text = tokens.join('');
    return text.slice(0, Math.floor(r() * text.length));
  } else if (kind < 0.9) {
    const chars = [...tokens.join('')];
    for (let n = 0; n < 3; n++) chars[Math.floor(r() * chars.length)] = String.fromCharCode(Math.floor(r() * 0x2ff));
    return chars.join('');
  } else {
    return Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick(WORDS)).join(r() < 0.5 ? ' ' : '');
  }
  return tokens.join('');
}

describe('grammar fuzzing', () => {
  it(`parses or refuses with a PgError ${INPUTS} mutated and generated statements (seed ${SEED})`, () => {
    expect(corpus.length).toBeGreaterThan(100);
    const r = rng(SEED);
    let accepted = 0;
    let slowest = 0;
    const started = performance.now();
    for (let i = 0; i < INPUTS; i++) {
      const input = mutate(corpus[Math.floor(r() * corpus.length)]!, r);
      const t = performance.now();
      try {
        parse(input);
        accepted++;
      } catch (err) {
        if (!(err instanceof PgError)) throw new Error(`input ${i} ${JSON.stringify(input)} threw ${String(err)}`);
        expect(err.code, JSON.stringify(input)).toMatch(/^(42601|42622|22P02|54000|0A000|22023|42P02|22003|22007|22008)$/);
      }
      slowest = Math.max(slowest, performance.now() - t);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`grammar fuzzer: ${INPUTS} inputs in ${seconds.toFixed(1)} s → ${Math.round(INPUTS / seconds)} inputs/s, ${accepted} accepted, slowest ${slowest.toFixed(1)} ms (seed ${SEED})`);
    // A hang fails through the test's timeout; speed is the bench's business, not an assertion here.
  }, 600_000);

  /**
   * Nesting: predicates nested at random with "(", NOT, AND and OR, up to thousands of levels,
   * balanced or broken, under the default limits and under random ones up to the widest a
   * server may be configured with. Each parses, or fails with 42601 (malformed), 54001 (too
   * deep or complex) or 54000 (too large) — never a RangeError, never another code. Each
   * accepted predicate renders to text that parses back to the same rendering.
   */
  const NESTINGS = Math.max(300, Math.floor(INPUTS / 100));
  it(`nests (, NOT, AND and OR at random ${NESTINGS} times: a parse, 42601, 54000 or 54001, nothing else (seed ${SEED})`, () => {
    const r = rng(SEED + 1);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
    const ATOMS = ['a = 1', 'b', '$auth.id = c', 'x IN (1, 2)', 'y IS NOT NULL', "$auth.scopes CONTAINS 'w'", 'TRUE'];
    // Each level opens with one of these and closes with its partner.
    const LEVELS: [string, string][] = [
      ['(', ')'],
      ['NOT ', ''],
      ['NOT (', ')'],
      ['(a = 1 AND ', ')'],
      ['(b OR NOT ', ')'],
      ['NOT NOT ', ''],
      ['(', ' OR c = 2)'],
      ['(', ' AND NOT d)'],
    ];
    const counts = { accepted: 0, '42601': 0, '54000': 0, '54001': 0 } as Record<string, number>;
    for (let i = 0; i < NESTINGS; i++) {
      const levels = Math.floor(r() ** 2 * 3000);
      const open: string[] = [];
      const close: string[] = [];
      for (let d = 0; d < levels; d++) {
        const [o, c] = pick(LEVELS);
        open.push(o);
        close.push(c);
      }
      let body = `${open.join('')}${pick(ATOMS)}${close.reverse().join('')}`;
      const damage = r();
      if (damage < 0.1) body = body.slice(0, Math.floor(r() * body.length));
      else if (damage < 0.15) body = body.replace(')', '');
      else if (damage < 0.2) body = `${body})`;
      else if (damage < 0.25) body = body.replace('NOT ', 'NOT AND ');
      const sql = `CREATE RLS POLICY p ON o FOR READ USING (${body})`;
      const limits: ParseLimits =
        r() < 0.5
          ? DEFAULT_PARSE_LIMITS
          : {
              ...WIDEST_PARSE_LIMITS,
              maxNestingDepth: 1 + Math.floor(r() * WIDEST_PARSE_LIMITS.maxNestingDepth),
              maxPredicateSize: 1 + Math.floor(r() * 20_000),
            };
      let statements: readonly Statement[];
      try {
        statements = parse(sql, limits);
      } catch (err) {
        if (!(err instanceof PgError)) throw new Error(`nesting ${i} (${levels} levels) threw ${String(err)}: ${sql.slice(0, 200)}`);
        expect(err.code, sql.slice(0, 200)).toMatch(/^(42601|54000|54001)$/);
        expect(err.position, sql.slice(0, 200)).toBeGreaterThan(0);
        counts[err.code] = (counts[err.code] ?? 0) + 1;
        continue;
      }
      counts.accepted!++;
      const predicate = (statements[0]!.command as { predicate: Predicate }).predicate;
      const text = predicateSource(predicate);
      const again = (parse(`CREATE RLS POLICY p ON o FOR READ USING (${text})`, WIDEST_PARSE_LIMITS)[0]!.command as { predicate: Predicate }).predicate;
      expect(predicateSource(again)).toBe(text);
    }
    console.log(`nesting fuzzer: ${NESTINGS} predicates: ${JSON.stringify(counts)} (seed ${SEED + 1})`);
    // Every outcome happens: the generator reaches past the limits and stays within them.
    expect(counts.accepted).toBeGreaterThan(0);
    expect(counts['54001']).toBeGreaterThan(0);
    expect(counts['42601']).toBeGreaterThan(0);
  }, 600_000);
});
