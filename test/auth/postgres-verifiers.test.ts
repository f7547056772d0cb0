import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { psql } from '../support/psql.js';
import { client, startTestServer } from '../support/server.js';

/**
 * SCRAM verifiers are interchangeable with PostgreSQL's for non-ASCII passwords: one that
 * PostgreSQL made logs in here, and one made here logs in to PostgreSQL. Both sides hash
 * SASLprep(password), so this holds only if our SASLprep is PostgreSQL's, fallbacks
 * included. psql (libpq) is the client on both sides: it prepares the password with the
 * same pg_saslprep as the PostgreSQL server.
 */
const PASSWORDS: [why: string, password: string][] = [
  ['non-ASCII space mapped to SPACE', 'correct\u00A0horse'],
  ['ZERO WIDTH SPACE: in both C.1.2 and B.1, mapped to SPACE', 'zero\u200Bwidth-ü'],
  ['soft hyphen mapped to nothing (RFC 4013 §3)', 'I\u00ADX-ünïcödé'],
  ['NFKC: full-width letters, a ligature, a circled digit', 'ｐａｓｓ\uFB01①'],
  ['right-to-left only, with a non-ASCII space: prepared', 'مرحبا\u00A0بالعالم'],
  ['RandALCat mixed with LCat: fails the bidi rule, hashed raw', 'שלום\u00A0world'],
  ['RandALCat string not ending in RandALCat: fails the bidi rule, hashed raw', 'שלום\u00AD123'],
  ['U+FFFD is prohibited (C.6): hashed raw', 'pass\uFFFD\u00A0word'],
  ['U+1D2C is unassigned in Unicode 3.2 (A.1), though NFKC makes it "A": hashed raw', '\u1D2Cdmin\u00A0pw'],
  ['U+0340 is prohibited (C.8) before NFKC makes it U+0300: PostgreSQL checks first, hashed raw', 'e\u0340\u00A0x'],
  ['™ between Hebrew letters is not LCat until NFKC makes it "TM": PostgreSQL checks first, prepared', '\u05D0\u2122\u05D0'],
  ['private use (C.3): hashed raw', '\uE000\u00A0key'],
  ['nothing left after mapping: hashed raw', '\u00AD\u200C'],
];

let pgsrv: PostgresServer;
let server: RunningServer;

beforeAll(async () => {
  [pgsrv, server] = await Promise.all([startPostgres(), startTestServer()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([pgsrv?.stop(), server?.close()]);
});

/** The password as ASCII, for test names: non-ASCII code points as \\u{...}. */
const escaped = (s: string) => [...s].map((ch) => (ch.codePointAt(0)! < 0x7f ? ch : `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`)).join('');

const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A psql login to portcullis (`port` = server.port) or to PostgreSQL (pgsrv.port). */
async function login(port: number, user: string, password: string, db: string): Promise<string> {
  const r = await psql(port, ['-At', '-c', 'SELECT current_user'], { user, password, db });
  return r.code === 0 ? r.stdout.trim() : `failed (${r.code}): ${r.stderr.trim()}`;
}

/** The verifier portcullis stored for `user`, from DUMP CATALOG. */
async function portcullisVerifier(user: string): Promise<string> {
  const c = await client(server.port);
  try {
    const { rows } = await c.query<{ statement: string }>('DUMP CATALOG');
    const line = rows.map((r) => r.statement).find((s) => s.includes(`USER ${user} `));
    const m = /PASSWORD '(SCRAM-SHA-256\$[^']+)'/.exec(line ?? '');
    if (!m) throw new Error(`no verifier for ${user} in DUMP CATALOG: ${line}`);
    return m[1]!;
  } finally {
    await c.end();
  }
}

describe('SCRAM verifiers of non-ASCII passwords are interchangeable with PostgreSQL', () => {
  PASSWORDS.forEach(([why, password], i) => {
    it(`${why}: ${escaped(password)}`, async () => {
      // PostgreSQL's verifier, used here.
      await pgsrv.query(`CREATE ROLE made_by_pg_${i} LOGIN PASSWORD ${literal(password)}`);
      const [row] = await pgsrv.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [`made_by_pg_${i}`]);
      const pgVerifier = row!.rolpassword;
      expect(pgVerifier).toMatch(/^SCRAM-SHA-256\$4096:/);
      const c = await client(server.port);
      await c.query(`CREATE USER made_by_pg_${i} PASSWORD ${literal(pgVerifier)}`);
      // Ours, made from the plain password, used by PostgreSQL.
      await c.query(`CREATE USER made_here_${i} PASSWORD ${literal(password)}`);
      await c.end();
      const ours = await portcullisVerifier(`made_here_${i}`);
      await pgsrv.query(`CREATE ROLE made_here_${i} LOGIN PASSWORD ${literal(ours)}`);

      expect(await login(server.port, `made_by_pg_${i}`, password, 'default')).toBe(`made_by_pg_${i}`);
      expect(await login(pgsrv.port, `made_here_${i}`, password, 'postgres')).toBe(`made_here_${i}`);
      expect(await login(server.port, `made_here_${i}`, password, 'default')).toBe(`made_here_${i}`);
    });
  });
});
