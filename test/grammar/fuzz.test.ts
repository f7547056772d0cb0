import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from '../../grammar/index.js';
import { PgError } from '../../src/errors/pg-error.js';
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
});
