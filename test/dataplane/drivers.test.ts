import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { superuserLockdownSql } from '../../src/dataplane/provision/index.js';
import type { RunningServer, ServerOptions } from '../../src/server.js';
import { okValue, PGJDBC_JAR, requireJava, requirePython, runProgram, stepOf, SYSTEM_PYTHON, type ProgramRun } from '../support/drivers.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { psql } from '../support/psql.js';
import { startTestServer } from '../support/server.js';

/**
 * Drivers' metadata and type look-ups through the data plane, each driver as a principal of
 * its own whose rows a policy `owner = $auth.username` picks: SQLAlchemy 1.4's reflection
 * and ORM session, asyncpg's pg_type introspection of an enum and jsonb, pgJDBC's
 * DatabaseMetaData and server-side prepared statements, postgres.js with its default
 * options. Each reads and writes rows, and is refused a row for another owner, on the
 * embedded plane (PGlite) and on Debian's PostgreSQL reached as a role that is no superuser.
 */

const GATEWAY_PASSWORD = 'gateway-secret';
const PROGRAMS = path.join(__dirname, 'programs');
/** One principal per driver; carol (a principal too) owns a row none of them may see. */
const DRIVERS = ['sa', 'apg', 'jdbc', 'pgjs'] as const;

interface Plane {
  name: string;
  options(): Promise<Partial<ServerOptions>>;
  stop(): Promise<void>;
}

function embedded(): Plane {
  return { name: 'embedded (PGlite)', options: async () => ({ dataPlane: 'embedded' }), stop: async () => {} };
}

function upstream(): Plane {
  let pgsrv: PostgresServer | null = null;
  return {
    name: 'upstream (PostgreSQL, portcullis no superuser)',
    async options() {
      pgsrv = await startPostgres();
      // What an operator does once as a superuser (docs/data-plane.md).
      await pgsrv.query(`CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD '${GATEWAY_PASSWORD}'`);
      const t1 = new pg.Client(pgsrv.connection(undefined, undefined, 'template1'));
      await t1.connect();
      await t1.query(superuserLockdownSql('gateway'));
      await t1.end();
      return { dataPlane: { upstream: `postgres://gateway:${GATEWAY_PASSWORD}@${pgsrv.host}:${pgsrv.port}/postgres` } };
    },
    async stop() {
      await pgsrv?.stop();
    },
  };
}

const pw = (user: string) => `${user}-pw`;

/** pgJDBC's program, compiled once for both planes (java's source launcher would compile it at every run). */
let classes: Promise<string>;

beforeAll(() => {
  requireJava();
  classes = mkdtemp(path.join(os.tmpdir(), 'pcu-drivers-')).then(async (dir) => {
    const r = await runProgram('javac', ['-cp', PGJDBC_JAR, '-d', dir, path.join(PROGRAMS, 'PgJdbcPlane.java')]);
    if (r.code !== 0) throw new Error(`javac failed: ${r.stderr}`);
    return dir;
  });
  // A failed compile fails the set-up that waits on it (with javac's message), not as an unhandled rejection here.
  classes.catch(() => {});
});

afterAll(async () => {
  const dir = await classes.catch(() => null);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each([embedded(), upstream()])('drivers on the $name data plane, under a policy', (plane) => {
  let server: RunningServer;
  /** What each program reported; the three run at once, postgres.js runs in its test. */
  let sa: ProgramRun;
  let apg: ProgramRun;
  let jdbc: ProgramRun;

  const python = (file: string, user: string) => runProgram(SYSTEM_PYTHON, [path.join(PROGRAMS, file), String(server.port), user, pw(user), 'shop'], { PYTHONDONTWRITEBYTECODE: '1' });
  const java = async (main: string, user: string) => runProgram('java', ['-cp', `${PGJDBC_JAR}:${await classes}`, main, String(server.port), user, pw(user), 'shop']);
  /** The rows `owner` reads through psql (`owner|amount` each): the policy shows each principal its own only. */
  const ownRows = async (owner: string) => {
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-At', '-c', 'SELECT owner, amount FROM orders ORDER BY id'], { user: owner, password: pw(owner), db: 'shop' });
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  beforeAll(async () => {
    requirePython({ sqlalchemy: 'python3-sqlalchemy', psycopg2: 'python3-psycopg2', asyncpg: 'python3-asyncpg' });
    // The catalog in memory; the embedded plane then too (its template cached across runs).
    server = await startTestServer(await plane.options());
    const setup = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      input: [
        'CREATE DATABASE shop;',
        ...[...DRIVERS, 'carol'].flatMap((u) => [`CREATE USER ${u} WITH PASSWORD '${pw(u)}' ROLE readwrite;`, `GRANT READ, WRITE ON DATABASE shop TO ${u};`]),
      ].join('\n'),
    });
    expect(setup.stderr).toBe('');
    const table = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      db: 'shop',
      input: [
        "CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');",
        "CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL, status order_status NOT NULL DEFAULT 'new', data jsonb, amount numeric(10,2));",
        `INSERT INTO orders (owner, status, data, amount) VALUES ${[...DRIVERS, 'carol'].map((u) => `('${u}', 'new', '{"seed": true}', 1)`).join(', ')};`,
        'CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username);',
      ].join('\n'),
    });
    expect(table.stderr).toBe('');
    [sa, apg, jdbc] = await Promise.all([python('sqlalchemy_plane.py', 'sa'), python('asyncpg_plane.py', 'apg'), java('PgJdbcPlane', 'jdbc')]);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await plane.stop();
  });

  describe('SQLAlchemy 1.4 (psycopg2): create_engine, reflection, an ORM session', () => {
    it("connects with create_engine; the dialect's default schema is public (and the program ran to its end)", () => {
      expect(sa.stderr).toBe('');
      expect(sa.code).toBe(0);
      expect(okValue(sa, 'connect')).toEqual({ version: ['1', '4'], current_user: 'sa', default_schema: 'public' });
    });

    it('reflects orders: its columns, the enum with its labels, jsonb and the primary key', () => {
      expect(okValue(sa, 'reflect')).toEqual({
        columns: [
          ['id', 'INTEGER', false],
          ['owner', 'TEXT', false],
          ['status', 'ENUM', false],
          ['data', 'JSONB', true],
          ['amount', 'NUMERIC', true],
        ],
        enum: ['new', 'paid', 'shipped'],
        primary_key: ['id'],
      });
      expect(okValue(sa, 'inspect')).toEqual({ tables: ['orders'], pk: ['id'], enums: [['order_status', ['new', 'paid', 'shipped']]] });
    });

    it("a session query returns sa's row only; it inserts its own; a row for carol is refused 42501", async () => {
      expect(okValue(sa, 'read')).toEqual([['sa', 'new', { seed: true }, '1.00']]);
      expect(okValue(sa, 'insert_own')).toBe(2);
      expect(stepOf(sa, 'insert_other')).toMatchObject({ ok: false, sqlstate: '42501' });
      expect(okValue(sa, 'update_all')).toBe(2);
      expect(okValue(sa, 'read_after')).toEqual([
        ['sa', 'new', { seed: true }, '2.00'],
        ['sa', 'paid', { via: 'sqlalchemy', n: [1, 2] }, '3.00'],
      ]);
      expect(await ownRows('sa')).toEqual(['sa|2.00', 'sa|3.00']);
      expect(await ownRows('carol')).toEqual(['carol|1.00']);
    });
  });

  describe("asyncpg: pg_type introspection of an enum and jsonb, binary formats", () => {
    it("reads apg's row only, decoding the enum it introspected (and the program ran to its end)", () => {
      expect(apg.stderr).toBe('');
      expect(apg.code).toBe(0);
      expect(okValue(apg, 'connect')).toBe(1);
      expect(okValue(apg, 'read')).toEqual([['apg', 'new', '{"seed": true}', '1.00']]);
    });

    it('sets a jsonb codec (its type look-up) and decodes jsonb with it', () => {
      expect(okValue(apg, 'jsonb_codec')).toEqual(['dict', 'dict']);
    });

    it('inserts its own row binding the enum and jsonb; a row for carol is refused 42501', async () => {
      expect(okValue(apg, 'insert_own')).toBe('INSERT 0 1');
      expect(stepOf(apg, 'insert_other')).toMatchObject({ ok: false, sqlstate: '42501' });
      expect(okValue(apg, 'enum_array')).toEqual(['new', 'shipped']);
      expect(okValue(apg, 'update_all')).toBe('UPDATE 2');
      expect(okValue(apg, 'read_after')).toEqual([
        ['apg', 'new', { seed: true }, '2.00'],
        ['apg', 'shipped', { via: 'asyncpg', n: [1, 2] }, '3.00'],
      ]);
      expect(await ownRows('apg')).toEqual(['apg|2.00', 'apg|3.00']);
      expect(await ownRows('carol')).toEqual(['carol|1.00']);
    });
  });

  describe('pgJDBC: DatabaseMetaData, server-side prepared statements', () => {
    it('getTables, getColumns and getPrimaryKeys describe orders (and the program ran to its end)', () => {
      expect(jdbc.stderr).toBe('');
      expect(jdbc.code).toBe(0);
      expect(okValue(jdbc, 'connect')).toBe('PostgreSQL');
      expect(okValue(jdbc, 'getTables')).toEqual([['public', 'orders', 'TABLE']]);
      expect(okValue(jdbc, 'getColumns')).toEqual([
        ['id', 'serial', 4, 'NO', 'YES'],
        ['owner', 'text', 12, 'NO', 'NO'],
        ['status', 'order_status', 12, 'NO', 'NO'],
        ['data', 'jsonb', 1111, 'YES', 'NO'],
        ['amount', 'numeric', 2, 'YES', 'NO'],
      ]);
      expect(okValue(jdbc, 'getPrimaryKeys')).toEqual([['id', 1, 'orders_pkey']]);
    });

    it("reads jdbc's row only; inserts its own six times; a row for carol is refused 42501", async () => {
      expect(okValue(jdbc, 'read')).toEqual([['jdbc', 'new', '{"seed": true}', '1.00']]);
      expect(okValue(jdbc, 'insert_own')).toBe(6);
      expect(stepOf(jdbc, 'insert_other')).toMatchObject({ ok: false, sqlstate: '42501' });
      expect(okValue(jdbc, 'update_all')).toBe(7);
      expect(okValue(jdbc, 'delete_extra')).toBe(5);
      expect(okValue(jdbc, 'read_after')).toEqual([
        ['jdbc', 'new', '{"seed": true}', '2.00'],
        ['jdbc', 'paid', '{"i": 0, "via": "pgjdbc"}', '3.00'],
      ]);
      expect(await ownRows('jdbc')).toEqual(['jdbc|2.00', 'jdbc|3.00']);
      expect(await ownRows('carol')).toEqual(['carol|1.00']);
    });
  });

  describe('postgres.js, default options (its pg_type look-up at connect, named prepared statements)', () => {
    it("reads pgjs's row only; inserts its own with an enum and a jsonb parameter; a row for carol is refused 42501", async () => {
      const sql = postgres({ host: '127.0.0.1', port: server.port, user: 'pgjs', pass: pw('pgjs'), database: 'shop', onnotice: () => {} });
      try {
        const read = async () => [...(await sql`SELECT owner, status, data, amount FROM orders ORDER BY id`)].map((r) => [r.owner, r.status, r.data, r.amount]);
        expect(await read()).toEqual([['pgjs', 'new', { seed: true }, '1.00']]);
        const row = { owner: 'pgjs', status: 'paid', data: sql.json({ via: 'postgres.js', n: [1, 2] }), amount: 2 };
        expect((await sql`INSERT INTO orders ${sql(row)}`).count).toBe(1);
        const refused = await sql`INSERT INTO orders ${sql({ ...row, owner: 'carol' })}`.then(
          () => null,
          (e: Error & { code?: string }) => e,
        );
        expect(refused?.code).toBe('42501');
        expect(refused?.message).toContain('row-level security');
        expect((await sql`UPDATE orders SET amount = amount + ${1}`).count).toBe(2);
        expect((await sql`SELECT array_agg(status ORDER BY id) AS s FROM orders`)[0]!.s).toEqual(['new', 'paid']);
        expect(await read()).toEqual([
          ['pgjs', 'new', { seed: true }, '2.00'],
          ['pgjs', 'paid', { via: 'postgres.js', n: [1, 2] }, '3.00'],
        ]);
      } finally {
        await sql.end();
      }
      expect(await ownRows('pgjs')).toEqual(['pgjs|2.00', 'pgjs|3.00']);
      expect(await ownRows('carol')).toEqual(['carol|1.00']);
    });
  });
});
