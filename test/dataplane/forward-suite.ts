import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import type { RunningServer, ServerOptions } from '../../src/server.js';
import type { TurnContext } from '../../src/dataplane/forwarder.js';
import { psql } from '../support/psql.js';
import { RawClient, names } from '../support/raw-client.js';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { ADMIN_PASSWORD, client, startTestServer } from '../support/server.js';

/**
 * Forwarding through the real server, the same on each data plane: what psql, node-postgres
 * and postgres.js see. One server (one data plane) per file. The identity hook here only
 * records its calls (the provisioner's applyIdentity is connected by the lead): these tests
 * are about the path of the bytes, not about privileges.
 */

/** Sends everything at once and collects the answers up to the `n`th ReadyForQuery. */
async function pipeline(c: RawClient, n: number, ...bufs: Buffer[]): Promise<BackendMessage[]> {
  c.take();
  c.send(...bufs);
  const out: BackendMessage[] = [];
  while (out.filter((m) => m.name === 'readyForQuery').length < n) {
    await c.until('readyForQuery');
    const got = c.take();
    const i = got.findIndex((m) => m.name === 'readyForQuery');
    out.push(...got);
    if (i < 0) break;
  }
  return out;
}

export interface PlaneUnderTest {
  /** The data plane to start the server on. */
  dataPlane(): Promise<ServerOptions['dataPlane']>;
  /** PGlite serves one connection: a session waits for another's transaction to end. */
  oneConnection: boolean;
  stop?(): Promise<void>;
}

export function describeForwarding(label: string, under: PlaneUnderTest): void {
let server: RunningServer;
const turns: { reset: boolean; changed: boolean }[] = [];
let ddl = 0;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-forward-'));

beforeAll(async () => {
  server = await startTestServer({
    dataPlane: await under.dataPlane(),
    dataPlaneHooks: () => ({
      identity: async (t: TurnContext) => {
        turns.push({ reset: t.reset, changed: t.changed });
        // As the provisioner's identity will: the connection's session state is reset, so
        // prepared statements of earlier turns are gone.
        if (t.reset) await t.lease.admin.exec('DEALLOCATE ALL');
      },
      afterDdl: async (lease) => {
        ddl++;
        // The hook runs on the lease, between the client's messages.
        await lease.admin.query('SELECT 1');
      },
    }),
  });
  const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    input: "CREATE USER alice WITH PASSWORD 'alice pw' ROLE readwrite;\nGRANT READ, WRITE ON DATABASE default TO alice;\n",
  });
  expect(r.stderr).toBe('');
}, 120_000);

afterAll(async () => {
  await server?.close();
  await under.stop?.();
  rmSync(dir, { recursive: true, force: true });
});

const run = (input: string, opts: { user?: string; password?: string } = {}) => psql(server.port, ['-v', 'ON_ERROR_STOP=0'], { input, ...opts });

describe(`psql on the ${label} data plane`, () => {
  it('CREATE TABLE, INSERT and SELECT answer with PostgreSQL command tags and rows; DDL reaches the hook', async () => {
    const before = ddl;
    const r = await run(
      [
        'CREATE TABLE items (id serial PRIMARY KEY, owner text NOT NULL, qty int);',
        "INSERT INTO items (owner, qty) VALUES ('admin', 1), ('alice', 2);",
        'SELECT id, owner, qty FROM items ORDER BY id;',
        "UPDATE items SET qty = qty + 1 WHERE owner = 'alice';",
        'DELETE FROM items WHERE qty > 100;',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'CREATE TABLE',
        'INSERT 0 2',
        ' id | owner | qty ',
        '----+-------+-----',
        '  1 | admin |   1',
        '  2 | alice |   2',
        '(2 rows)',
        '',
        'UPDATE 1',
        'DELETE 0',
        '',
      ].join('\n'),
    );
    expect(ddl).toBe(before + 1);
  });

  it("psql's \\dt and \\d read the data plane's catalog", async () => {
    const r = await run('\\dt\n\\d items\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/public \| items \| table \| \w+/);
    expect(r.stdout).toContain('Table "public.items"');
    expect(r.stdout).toMatch(/ owner +\| text +\| +\| not null \|/);
  });

  it('errors carry SQLSTATE and position: psql draws its caret, also after a substituted $auth', async () => {
    const r = await psql(server.port, ['-v', 'VERBOSITY=verbose'], { input: 'SELECT $auth.username, nope FROM items;\n' });
    expect(r.stderr).toContain('ERROR:  42703: column "nope" does not exist');
    expect(r.stderr).toContain('LINE 1: SELECT $auth.username, nope FROM items;\n                               ^');
  });

  it('BEGIN ... ROLLBACK discards rows; the prompt follows the data plane transaction status', async () => {
    const r = await run(
      ['BEGIN;', "INSERT INTO items (owner, qty) VALUES ('tx', 9);", 'SELECT count(*) FROM items;', 'ROLLBACK;', 'SELECT count(*) FROM items;'].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(['BEGIN', 'INSERT 0 1', ' count ', '-------', '     3', '(1 row)', '', 'ROLLBACK', ' count ', '-------', '     2', '(1 row)', '', ''].join('\n'));
  });

  it('an error in a data-plane block fails it (25P02) until ROLLBACK, also for errors portcullis raises itself', async () => {
    const r = await run(['BEGIN;', 'SET ROLE postgres;', 'SELECT 1 FROM items;', 'ROLLBACK;', 'SELECT count(*) FROM items;'].join('\n'));
    expect(r.stderr).toContain('ERROR:  SET ROLE is not allowed through portcullis');
    expect(r.stderr).toContain('ERROR:  current transaction is aborted, commands ignored until end of transaction block');
    expect(r.stdout).toContain('ROLLBACK\n count \n-------\n     2');
    // The same inside the data plane's own block (opened by SQL), and ROLLBACK TO SAVEPOINT recovers, as in PostgreSQL.
    const inPlane = await run(
      ['BEGIN;', "INSERT INTO items (owner, qty) VALUES ('sp', 1);", 'SAVEPOINT s;', 'SET ROLE postgres;', 'SELECT 1 FROM items;', 'ROLLBACK TO SAVEPOINT s;', "SELECT count(*) FROM items WHERE owner = 'sp';", 'ROLLBACK;'].join('\n'),
    );
    expect(inPlane.stderr.match(/ERROR: {2}current transaction is aborted/g)).toHaveLength(1);
    expect(inPlane.stdout).toContain('ROLLBACK\n count \n-------\n     1\n(1 row)\n\nROLLBACK');
  });

  it('COPY FROM STDIN and \\copy TO pass through', async () => {
    const out = path.join(dir, 'items.csv');
    const r = await run(['\\copy items (owner, qty) FROM stdin', 'copied\t7', 'copied\t8', '\\.', `\\copy (SELECT owner, qty FROM items WHERE owner = 'copied' ORDER BY qty) TO '${out}' with (format csv)`].join('\n'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('COPY 2\nCOPY 2\n');
    expect(readFileSync(out, 'utf8')).toBe('copied,7\ncopied,8\n');
    const del = await run("DELETE FROM items WHERE owner = 'copied';");
    expect(del.stdout).toBe('DELETE 2\n');
  });

  it('SET ROLE, SET SESSION AUTHORIZATION in SQL and set_config of $auth names are refused with 42501 before the data plane', async () => {
    const c = await client(server.port);
    try {
      for (const sql of ['SET ROLE postgres', 'SET LOCAL ROLE postgres', "SET role = 'postgres'", 'RESET ROLE', "SET auth.username = 'bob'", "SELECT set_config('auth.username', 'bob', false)", 'SELECT 1 FROM items; RESET ROLE', 'ALTER TABLE items DISABLE ROW LEVEL SECURITY', 'GRANT SELECT ON items TO PUBLIC']) {
        const err = (await c.query(sql).catch((e: unknown) => e)) as { code?: string };
        expect(err.code, sql).toBe('42501');
      }
      expect((await c.query('SELECT current_user AS u, count(*)::int AS n FROM items')).rows).toEqual([{ u: 'postgres', n: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('$auth.<var> in forwarded SQL reads the session: the login name, a list as an array, an integer compared with $auth.id', async () => {
    const r = await run("SELECT $auth.username AS me, $auth.roles AS roles, '$auth.username' AS literal, count(*) FROM items WHERE owner = $auth.username;", { user: 'alice', password: 'alice pw' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(' alice | {readwrite} | $auth.username |     1');
    const c = await client(server.port, 'alice', 'alice pw');
    try {
      const id = (await c.query('SELECT $auth.id AS id')).rows[0].id as string;
      const typed = await c.query('SELECT (v.n = $auth.id) AS same, $auth.email IS NULL AS no_email FROM (VALUES ($1::int)) v(n)', [Number(id)]);
      expect(typed.rows).toEqual([{ same: true, no_email: true }]);
      const unknown = (await c.query('SELECT $auth.nope FROM items').catch((e: unknown) => e)) as { code?: string };
      expect(unknown.code).toBe('42704');
    } finally {
      await c.end();
    }
  });

  it("settings the session does not have are the data plane's; its own stay its own", async () => {
    const r = await run(['SET enable_seqscan = off;', 'SHOW enable_seqscan;', 'RESET enable_seqscan;', 'SHOW enable_seqscan;', 'SHOW max_statement_bytes;'].join('\n'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      ['SET', ' enable_seqscan ', '----------------', ' off', '(1 row)', '', 'RESET', ' enable_seqscan ', '----------------', ' on', '(1 row)', '', ' max_statement_bytes ', '---------------------', ' 1048576', '(1 row)', '', ''].join('\n'),
    );
  });

  it('session state that would outlive a turn: 0A000 where sessions share one connection, PostgreSQL\'s own answer where not', async () => {
    const c = await client(server.port);
    try {
      for (const sql of ['CREATE TEMP TABLE scratch (a int)', 'PREPARE p AS SELECT 1', 'SELECT pg_advisory_lock(42)', "SELECT 1 FROM items LIMIT 1; SET idle_session_timeout = 0"]) {
        const r = (await c.query(sql).catch((e: unknown) => e)) as { code?: string; command?: string };
        if (under.oneConnection) expect(r.code, sql).toBe('0A000');
        else expect(r.code, sql).toBeUndefined();
      }
      if (!under.oneConnection) await c.query('DROP TABLE scratch; DEALLOCATE p; SELECT pg_advisory_unlock(42); RESET idle_session_timeout');
    } finally {
      await c.end();
    }
  });

  it('admin statements and SQL share one message and one transaction block (test/dataplane/mixed.test.ts has the commits)', async () => {
    const c = await client(server.port);
    try {
      const both = (await c.query('SHOW USERS; SELECT 1 AS one FROM items LIMIT 1')) as unknown as { command: string; rows: unknown[] }[];
      expect(both.map((r) => r.command)).toEqual(['SHOW', 'SELECT']);
      expect(both[1]!.rows).toEqual([{ one: 1 }]);
      await c.query('BEGIN');
      await c.query('SELECT 1 FROM items');
      expect((await c.query('SHOW USERS')).rows.length).toBeGreaterThan(0);
      expect((await c.query('ROLLBACK')).command).toBe('ROLLBACK');
      // A prepared admin statement, run inside a data-plane block.
      await c.query('BEGIN');
      await c.query('SELECT 1 FROM items');
      expect((await c.query({ name: 'show_users', text: 'SHOW USERS' })).rows.length).toBeGreaterThan(0);
      expect((await c.query('COMMIT')).command).toBe('COMMIT');
      expect((await c.query({ name: 'show_users', text: 'SHOW USERS' })).rows.length).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  });
});

describe(`drivers on the ${label} data plane`, () => {
  it('node-postgres: parameters through the extended protocol, and a prepared admin statement next to a prepared SQL statement', async () => {
    const c = await client(server.port);
    try {
      const r = await c.query('SELECT id, owner, qty FROM items WHERE owner = $1 AND qty >= $2', ['alice', 1]);
      expect(r.rows).toEqual([{ id: 2, owner: 'alice', qty: 3 }]);
      expect(r.fields.map((f) => f.dataTypeID)).toEqual([23, 25, 23]);
      for (let i = 0; i < 2; i++) {
        const admin = await c.query({ name: 'users', text: 'SHOW USERS' });
        expect(admin.rows.map((u: { name: string }) => u.name).sort()).toEqual(['admin', 'alice']);
        const sql = await c.query({ name: 'by_owner', text: 'SELECT qty FROM items WHERE owner = $1', values: ['admin'] });
        expect(sql.rows).toEqual([{ qty: 1 }]);
      }
    } finally {
      await c.end();
    }
  });

  it('two sessions interleave transactions, and their prepared statements survive the other turns', async () => {
    const a = await client(server.port);
    const b = await client(server.port, 'alice', 'alice pw');
    try {
      await a.query('BEGIN');
      await a.query("INSERT INTO items (owner, qty) VALUES ('a', 1)");
      // Embedded: b's statement waits for a's turn to end (PGlite serves one connection), and
      // sees a's rows; upstream: it runs at once on its own connection, before a commits.
      const waiting = b.query({ name: 'count_b', text: 'SELECT count(*)::int AS n FROM items' });
      if (!under.oneConnection) expect((await waiting).rows).toEqual([{ n: 2 }]);
      await a.query("INSERT INTO items (owner, qty) VALUES ('a', 2)");
      await a.query('COMMIT');
      if (under.oneConnection) expect((await waiting).rows).toEqual([{ n: 4 }]);
      await a.query({ name: 'count_a', text: 'SELECT count(*)::int AS n FROM items WHERE owner = $1', values: ['a'] });
      await b.query('BEGIN');
      await b.query("DELETE FROM items WHERE owner = 'a'");
      await b.query('COMMIT');
      // Both named statements were prepared on turns the other session has had since.
      expect((await a.query({ name: 'count_a', text: 'SELECT count(*)::int AS n FROM items WHERE owner = $1', values: ['a'] })).rows).toEqual([{ n: 0 }]);
      expect((await b.query({ name: 'count_b', text: 'SELECT count(*)::int AS n FROM items' })).rows).toEqual([{ n: 2 }]);
      expect(turns.some((t) => t.reset)).toBe(true);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('SET SESSION AUTHORIZATION: the next turn is told the identity changed, and a prepared statement reads the new $auth values', async () => {
    const c = await client(server.port);
    try {
      const q = { name: 'who', text: 'SELECT $auth.username AS u FROM items LIMIT 1' };
      expect((await c.query(q)).rows).toEqual([{ u: 'admin' }]);
      const before = turns.length;
      await c.query('SET SESSION AUTHORIZATION alice');
      expect((await c.query(q)).rows).toEqual([{ u: 'alice' }]);
      expect(turns.slice(before).some((t) => t.changed)).toBe(true);
      await c.query('RESET SESSION AUTHORIZATION');
      expect((await c.query(q)).rows).toEqual([{ u: 'admin' }]);
    } finally {
      await c.end();
    }
  });

  it('postgres.js with its defaults (named statements, pipelining, its type look-up)', async () => {
    const sql = postgres({ host: '127.0.0.1', port: server.port, user: 'admin', password: ADMIN_PASSWORD, database: 'default', max: 1, onnotice: () => {} });
    try {
      const [x, y, z] = await Promise.all([
        sql`SELECT owner, qty FROM items WHERE qty = ${1}`,
        sql`SELECT owner, qty FROM items WHERE qty = ${3}`,
        sql`SELECT count(*)::int AS n FROM items`,
      ]);
      expect([...x]).toEqual([{ owner: 'admin', qty: 1 }]);
      expect([...y]).toEqual([{ owner: 'alice', qty: 3 }]);
      expect([...z]).toEqual([{ n: 2 }]);
      const rows = await sql.begin(async (tx) => {
        await tx`INSERT INTO items (owner, qty) VALUES (${'pjs'}, ${5})`;
        return tx`SELECT owner FROM items WHERE owner = ${'pjs'}`;
      });
      expect([...rows]).toEqual([{ owner: 'pjs' }]);
      await sql`DELETE FROM items WHERE owner = 'pjs'`;
    } finally {
      await sql.end();
    }
  });
});

describe(`the extended protocol on the ${label} data plane`, () => {
  it('admin and SQL statements in one pipeline answer in order; names are shared; an error skips to Sync', async () => {
    const c = await RawClient.login(server.port);
    try {
      const ms = await pipeline(
        c,
        3,
        serialize.parse({ name: 'adm', text: 'SHOW USERS', types: [] }),
        serialize.parse({ name: 'sq', text: 'SELECT owner FROM items WHERE qty >= $1 ORDER BY qty', types: [] }),
        serialize.bind({ statement: 'sq', values: ['1'] }),
        serialize.execute({}),
        serialize.bind({ statement: 'adm' }),
        serialize.execute({}),
        serialize.sync(),
        serialize.parse({ name: 'sq', text: 'SELECT 1', types: [] }),
        serialize.bind({ statement: 'sq', values: ['1'] }),
        serialize.execute({}),
        serialize.sync(),
        serialize.query('SELECT count(*) FROM items'),
      );
      expect(names(ms)).toEqual([
        'parseComplete',
        'parseComplete',
        'bindComplete',
        'dataRow',
        'dataRow',
        'commandComplete',
        'bindComplete',
        'dataRow',
        'dataRow',
        'commandComplete',
        'readyForQuery',
        'error',
        'readyForQuery',
        'rowDescription',
        'dataRow',
        'commandComplete',
        'readyForQuery',
      ]);
      expect((ms.find((m) => m.name === 'error') as unknown as { code: string }).code).toBe('42P05');
    } finally {
      c.end();
    }
  });

  it('a named statement prepared before BEGIN runs inside the block: ROLLBACK undoes it', async () => {
    const c = await client(server.port);
    try {
      await c.query('CREATE TABLE named_tx (n int)');
      const insert = (n: number) => c.query({ name: 'ins_named_tx', text: 'INSERT INTO named_tx VALUES ($1)', values: [n] });
      await insert(1);
      await c.query('BEGIN');
      await insert(2);
      await insert(3);
      expect((await c.query('SELECT count(*)::int AS n FROM named_tx')).rows).toEqual([{ n: 3 }]);
      await c.query('ROLLBACK');
      expect((await c.query('SELECT n FROM named_tx ORDER BY n')).rows).toEqual([{ n: 1 }]);
      await c.query('BEGIN');
      await insert(4);
      await c.query('COMMIT');
      expect((await c.query('SELECT n FROM named_tx ORDER BY n')).rows).toEqual([{ n: 1 }, { n: 4 }]);
    } finally {
      await c.end();
    }
  });

  it("an error in one extended group does not skip the next group, sent before the error came back", async () => {
    const c = await RawClient.login(server.port);
    try {
      const ms = await pipeline(
        c,
        2,
        serialize.parse({ name: '', text: 'SELECT owner FROM no_such_table', types: [] }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
        serialize.parse({ name: '', text: 'SELECT 7 AS seven FROM generate_series(1, 1)', types: [] }),
        serialize.bind({}),
        serialize.describe({ type: 'P', name: '' }),
        serialize.execute({}),
        serialize.sync(),
      );
      expect(names(ms)).toEqual(['error', 'readyForQuery', 'parseComplete', 'bindComplete', 'rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    } finally {
      c.end();
    }
  });

  it('an error from the data plane mid-pipeline skips the rest of the group, admin messages included', async () => {
    const c = await RawClient.login(server.port);
    try {
      const ms = await pipeline(
        c,
        2,
        serialize.parse({ name: 'adm2', text: 'SHOW USERS', types: [] }),
        serialize.parse({ name: 'bad', text: 'SELECT owner FROM no_such_table', types: [] }),
        serialize.bind({ statement: 'bad' }),
        serialize.execute({}),
        serialize.bind({ statement: 'adm2' }),
        serialize.execute({}),
        serialize.sync(),
        serialize.query('SELECT 1 AS one FROM items LIMIT 1'),
      );
      expect(names(ms)).toEqual(['parseComplete', 'error', 'readyForQuery', 'rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
      expect((ms[1] as unknown as { code: string }).code).toBe('42P01');
    } finally {
      c.end();
    }
  });

  it('a prepared DDL statement reaches the DDL hook when it runs, not when it is parsed', async () => {
    const c = await RawClient.login(server.port);
    try {
      const before = ddl;
      expect(names(await c.roundTrip(serialize.parse({ name: 'mk', text: 'CREATE TABLE made_later (a int)', types: [] }), serialize.sync()))).toEqual(['parseComplete', 'readyForQuery']);
      expect(ddl).toBe(before);
      expect(names(await c.roundTrip(serialize.bind({ statement: 'mk' }), serialize.execute({}), serialize.sync()))).toEqual(['bindComplete', 'commandComplete', 'readyForQuery']);
      expect(ddl).toBe(before + 1);
      await c.roundTrip(serialize.query('DROP TABLE made_later'));
    } finally {
      c.end();
    }
  });

  it("an error portcullis raises mid-group rolls back the group's data-plane statements, as PostgreSQL would", async () => {
    const c = await RawClient.login(server.port);
    try {
      const ms = await pipeline(
        c,
        1,
        serialize.parse({ text: "INSERT INTO items (owner, qty) VALUES ('grp', 1)", types: [] }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.parse({ text: 'SET ROLE postgres', types: [] }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
      );
      expect(names(ms)).toEqual(['parseComplete', 'bindComplete', 'commandComplete', 'error', 'readyForQuery']);
      expect((ms[3] as unknown as { code: string }).code).toBe('42501');
      const count = await c.roundTrip(serialize.query("SELECT count(*) FROM items WHERE owner = 'grp'"));
      expect((count.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields).toEqual(['0']);
    } finally {
      c.end();
    }
  });

  it('row limits on Execute of a data-plane portal inside a block: PortalSuspended, then the rest', async () => {
    const c = await RawClient.login(server.port);
    try {
      expect(names(await c.roundTrip(serialize.query('BEGIN')))).toEqual(['commandComplete', 'readyForQuery']);
      const ms = await c.roundTrip(
        serialize.parse({ text: 'SELECT owner FROM items ORDER BY id', types: [] }),
        serialize.bind({ portal: 'cur' }),
        serialize.execute({ portal: 'cur', rows: 1 }),
        serialize.execute({ portal: 'cur', rows: 0 }),
        serialize.sync(),
      );
      expect(names(ms)).toEqual(['parseComplete', 'bindComplete', 'dataRow', 'portalSuspended', 'dataRow', 'commandComplete', 'readyForQuery']);
      expect((ms.at(-1) as unknown as { status: string }).status).toBe('T');
      const end = await c.roundTrip(serialize.query('COMMIT'));
      expect((end.at(-1) as unknown as { status: string }).status).toBe('I');
    } finally {
      c.end();
    }
  });
});
}
