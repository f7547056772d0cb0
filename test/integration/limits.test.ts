import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import { resolveConfig } from '../../src/config/config.js';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, spawnServer, startTestServer } from '../support/server.js';

/**
 * Statement limits through the real server (SPEC §6: "54000 / 54001 statement too large /
 * too complex; limits are settings; never a crash, never XX000"): statements that once
 * overflowed the stack (XX000) or held the event loop for seconds are refused with a
 * position; the connection goes on, other clients log in, nothing is logged as internal.
 */
let server: RunningServer;
let admin: pg.Client;
const logs: string[] = [];

const POLICY = 'CREATE RLS POLICY p ON orders FOR READ USING (';
const policy = (predicate: string) => `${POLICY}${predicate})`;

interface Refusal {
  code: string;
  message: string;
  position?: string;
  hint?: string;
}

beforeAll(async () => {
  server = await startTestServer({ httpPort: 0, log: (l) => logs.push(l) });
  admin = await client(server.port);
});
afterAll(async () => {
  await admin.end();
  await server.close();
});

async function refused(c: pg.Client, sql: string | pg.QueryConfig): Promise<Refusal> {
  const err = await c.query(sql).then(
    () => null,
    (e: Refusal) => e,
  );
  if (!err) throw new Error('expected the statement to be refused');
  return err;
}

/** The connection that was refused still works, and another client logs in and works. */
async function stillServing(c: pg.Client): Promise<void> {
  expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: 'admin' }]);
  const other = await client(server.port);
  const auth = await other.query('SHOW AUTH');
  expect(auth.rows.length).toBeGreaterThan(0);
  await other.end();
  expect(logs.filter((l) => l.includes('internal error'))).toEqual([]);
}

describe('statement limits over pgwire', () => {
  it('refuses 400 nested parentheses with 54001 at the "(" one too deep, not XX000', async () => {
    const e = await refused(admin, policy(`${'('.repeat(400)}a = 1${')'.repeat(400)}`));
    expect(e).toMatchObject({ code: '54001', message: 'expression nested more than 100 levels deep', position: String(POLICY.length + 100) });
    expect(e.hint).toContain('max_nesting_depth');
    await stillServing(admin);
  });

  it('refuses 100,000 NOTs with 54001 at the NOT one too deep', async () => {
    const e = await refused(admin, policy(`${'NOT '.repeat(100_000)}a = 1`));
    expect(e).toMatchObject({ code: '54001', message: 'expression nested more than 100 levels deep', position: String(POLICY.length + 1 + 99 * 4) });
    await stillServing(admin);
  });

  it('refuses a 100,000-term AND chain with 54001, as too many tokens', async () => {
    const sql = policy(Array.from({ length: 100_000 }, (_, i) => `a = ${i}`).join(' AND '));
    const e = await refused(admin, sql);
    expect(e).toMatchObject({ code: '54001', message: 'statement has more than 50000 tokens' });
    // Where token 50,001 starts: every word, number, "(" and "=" is one.
    const offsets: number[] = [];
    const re = /[A-Za-z_]+|\d+|[()=]/g;
    for (let m = re.exec(sql); m && offsets.length <= 50_000; m = re.exec(sql)) offsets.push(m.index);
    expect(e.position).toBe(String(offsets[50_000]! + 1));
    await stillServing(admin);
  });

  it('refuses a 7 MB IN list with a position, and everyone else goes on', async () => {
    const sql = policy(`a IN (${Array.from({ length: 700_000 }, (_, i) => `'v${i}'`).join(', ')})`);
    expect(sql.length).toBeGreaterThan(7_000_000);
    const e = await refused(admin, sql);
    expect(e).toMatchObject({ code: '54001', message: 'statement has more than 50000 tokens' });
    expect(Number(e.position)).toBeGreaterThan(POLICY.length);
    await stillServing(admin);
    // Nothing of it was kept.
    expect((await admin.query('SHOW RLS POLICIES')).rows).toEqual([]);
  });

  it('refuses more than 1 MiB of statement with 54000 at its first token, and takes 1 MiB', async () => {
    const MiB = 1024 * 1024;
    const head = "SELECT '";
    const exactly = `${head}${'x'.repeat(MiB - head.length - 1)}'`;
    expect((await admin.query(exactly)).rows).toHaveLength(1);
    const e = await refused(admin, `SELECT 1; ${exactly}x`);
    expect(e).toMatchObject({ code: '54000', message: 'statement is larger than 1048576 bytes', position: '11' });
    await stillServing(admin);
  });

  it('refuses an IN list of 5,001 items with 54000 at the item too many, and keeps one of 5,000', async () => {
    const item = (i: number) => `'${i.toString(16).padStart(32, '0')}'`;
    const list = (n: number) => Array.from({ length: n }, (_, i) => item(i)).join(', ');
    const tooLong = policy(`a IN (${list(5001)})`);
    const e = await refused(admin, tooLong);
    expect(e).toMatchObject({ code: '54000', message: 'IN list has more than 5000 items', position: String(tooLong.indexOf(item(5000)) + 1) });
    await admin.query(policy(`a IN (${list(5000)})`));
    const shown = await admin.query('SHOW RLS POLICIES ON orders');
    expect(shown.rows).toHaveLength(1);
    expect((shown.rows[0].using as string).split(', ')).toHaveLength(5000);
    await admin.query('DROP RLS POLICY p ON orders');
    await stillServing(admin);
  });

  it('refuses a predicate of more than 10,000 terms with 54001', async () => {
    const sql = policy(Array.from({ length: 2501 }, (_, i) => `a = ${i}`).join(' AND '));
    const e = await refused(admin, sql);
    expect(e).toMatchObject({ code: '54001', message: 'RLS predicate has more than 10000 terms', position: String(sql.indexOf('a = 2500') + 1) });
    await stillServing(admin);
  });

  it('leaves a transaction block as a syntax error does, and ROLLBACK ends it', async () => {
    const after = async (bad: string) => {
      await admin.query('BEGIN');
      const e = await refused(admin, bad);
      const next = await admin.query('SHOW AUTH').then(
        () => 'ok',
        (x: Refusal) => x.code,
      );
      await admin.query('ROLLBACK');
      return [e.code, next];
    };
    const syntax = await after('SELEC 1');
    expect(await after(policy(`${'('.repeat(200)}a${')'.repeat(200)}`))).toEqual(['54001', syntax[1]]);
    await stillServing(admin);
  });

  it('applies the same limits to the extended protocol', async () => {
    const e = await refused(admin, { text: policy(`${'('.repeat(150)}a = $1${')'.repeat(150)}`), values: ['x'] });
    expect(e).toMatchObject({ code: '54001', position: String(POLICY.length + 100) });
    await stillServing(admin);
  });

  it('draws psql\'s caret under the "(" one too deep', async () => {
    const r = await psql(server.port, ['-c', `SELECT ${'('.repeat(120)}1${')'.repeat(120)}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERROR:  expression nested more than 100 levels deep');
    expect(r.stderr).toMatch(/\nLINE 1: .*\n\s+\^\n/);
  });

  it('shows the limits as read-only settings', async () => {
    const show = async (name: string) => (await admin.query(`SHOW ${name}`)).rows[0]![name] as string;
    expect(await show('max_statement_bytes')).toBe('1048576');
    expect(await show('max_statement_tokens')).toBe('50000');
    expect(await show('max_nesting_depth')).toBe('100');
    expect(await show('max_predicate_size')).toBe('10000');
    expect(await show('max_in_list_length')).toBe('5000');
    expect((await refused(admin, 'SET max_nesting_depth = 1000')).code).toBe('55P02');
  });
});

describe('a statement no limit covers', () => {
  it('ends a stack overflow as 54001, not XX000, and the server goes on', async () => {
    // A chain of 10,000 casts is 20,000 tokens deep in nothing but casts: no limit counts it.
    const e = await refused(admin, `SELECT 1${'::text'.repeat(10_000)}`);
    expect(e.code).toBe('54001');
    // The operator is told, for a limit should cover it.
    expect(logs.some((l) => l.includes('RangeError'))).toBe(true);
    logs.length = 0;
    await stillServing(admin);
  });
});

describe('statement limits over HTTP', () => {
  it('answers /v1/query with the same 54001 and position, and a body over 1 MiB with 413', async () => {
    await admin.query("CREATE USER ana PASSWORD 'pw' ROLE admin");
    const key = (await admin.query("CREATE API KEY 'limits' FOR ana")).rows[0].key as string;
    expect(parseKey(key)).not.toBeNull();
    const query = (sql: string) =>
      fetch(`http://127.0.0.1:${server.httpPort}/v1/query`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
    const deep = await query(policy(`${'('.repeat(400)}a = 1${')'.repeat(400)}`));
    expect(deep.status).toBe(400);
    expect(((await deep.json()) as { error: unknown }).error).toMatchObject({ code: '54001', message: 'expression nested more than 100 levels deep', position: POLICY.length + 100 });
    const nots = await query(policy(`${'NOT '.repeat(100_000)}a = 1`));
    expect(((await nots.json()) as { error: { code: string } }).error.code).toBe('54001');
    const big = await query(policy(`a IN (${Array.from({ length: 700_000 }, (_, i) => `'v${i}'`).join(', ')})`));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('54000');
    const fine = await query('SELECT $auth.role AS role');
    expect(fine.status).toBe(200);
  });
});

describe('statement limits as settings', () => {
  it('takes the server\'s own limits', async () => {
    const tight = await startTestServer({ parseLimits: { maxNestingDepth: 5, maxInListLength: 3 } });
    try {
      const c = await client(tight.port);
      expect((await c.query('SHOW max_nesting_depth')).rows[0]).toEqual({ max_nesting_depth: '5' });
      await c.query(policy('((((a = 1))))'));
      expect(await refused(c, policy('(((((a = 1)))))'))).toMatchObject({ code: '54001', message: 'expression nested more than 5 levels deep' });
      expect(await refused(c, policy('b IN (1, 2, 3, 4)'))).toMatchObject({ code: '54000', message: 'IN list has more than 3 items' });
      await c.end();
    } finally {
      await tight.close();
    }
  });

  it('reads them from portcullis.toml and PORTCULLIS_* variables, within bounds', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portcullis-limits-'));
    const file = path.join(dir, 'portcullis.toml');
    writeFileSync(file, 'max_statement_bytes = 65536\nmax_in_list_length = 20000\n');
    expect(resolveConfig({}, { PORTCULLIS_MAX_NESTING_DEPTH: '50', PORTCULLIS_MAX_PREDICATE_SIZE: '500', PORTCULLIS_MAX_STATEMENT_TOKENS: '1000' }, file)).toMatchObject({
      maxStatementBytes: 65536,
      maxStatementTokens: 1000,
      maxNestingDepth: 50,
      maxPredicateSize: 500,
      maxInListLength: 20000,
    });
    expect(resolveConfig({}, {}, undefined)).toMatchObject({ maxStatementBytes: 1048576, maxStatementTokens: 50000, maxNestingDepth: 100, maxPredicateSize: 10000, maxInListLength: 5000 });
    expect(() => resolveConfig({}, { PORTCULLIS_MAX_NESTING_DEPTH: '5000' }, undefined)).toThrow(/max_nesting_depth must be an integer from 1 to 1000/);
    expect(() => resolveConfig({}, { PORTCULLIS_MAX_STATEMENT_BYTES: String(32 * 1024 * 1024) }, undefined)).toThrow(/max_statement_bytes must be an integer from 1024 to 16777216/);
  });

  it('reaches the server from the environment of `portcullis serve`', async () => {
    const p = await spawnServer(['--memory'], { PORTCULLIS_MAX_NESTING_DEPTH: '3' });
    try {
      const r = await psql(p.port, ['-At', '-c', 'SHOW max_nesting_depth']);
      expect(r.stdout).toBe('3\n');
      const deep = await psql(p.port, ['-c', 'SELECT ((((1))))']);
      expect(deep.stderr).toContain('ERROR:  expression nested more than 3 levels deep');
    } finally {
      await p.stop();
    }
  });
});
