import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { PGJDBC_JAR, requireJava, requirePython, SYSTEM_PYTHON } from '../support/drivers.js';
import pg from 'pg';
import { superuserLockdownSql } from '../../src/dataplane/provision/index.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { psql } from '../support/psql.js';
import { startTestServer } from '../support/server.js';

/**
 * The tools people point at PostgreSQL, pointed at the embedded data plane as alice, a
 * principal who is no superuser: psql's describe commands, \x and \copy, postgres.js with
 * its default pg_type look-up, SQLAlchemy's connect and pgJDBC's DatabaseMetaData.
 */

let server: RunningServer;
let dir: string;
const alice = (input: string, db = 'shop') => psql(server.port, ['-v', 'ON_ERROR_STOP=1'], { user: 'alice', password: 'alice-pw', db, input });

function program(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-tools-'));
  server = await startTestServer({ dataDir: path.join(dir, 'data'), dataPlane: 'embedded' });
  const setup = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    input: [
      'CREATE DATABASE shop;',
      'CREATE DATABASE other;',
      'CREATE ROLE clerks;',
      "CREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;",
      "CREATE USER mallory WITH PASSWORD 'mallory-pw' ROLE readwrite;",
      'GRANT clerks TO alice;',
      'GRANT READ, WRITE ON DATABASE shop TO alice;',
      'GRANT READ, WRITE ON DATABASE other TO mallory;',
      'CREATE TENANT acme;',
      'SET TENANT acme;',
      'CREATE DATABASE acmedb;',
      'CREATE ROLE acme_staff;',
      "CREATE USER acme_admin WITH PASSWORD 'acme-pw' ROLE admin;",
      'GRANT READ ON DATABASE acmedb TO acme_admin;',
      'RESET TENANT;',
    ].join('\n'),
  });
  expect(setup.stderr).toBe('');
  const table = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    db: 'shop',
    input: "CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL, amount numeric);\nINSERT INTO orders (owner, amount) VALUES ('alice', 5);\n",
  });
  expect(table.stderr).toBe('');
}, 120_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('psql against the embedded data plane, as a principal who is no superuser', () => {
  it('\\dt lists the table', async () => {
    const r = await alice('\\dt\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ +List of relations\n Schema \| +Name +\| Type +\| +Owner +\n-+\+-+\+-+\+-+\n public \| orders \| table \| pcu_\w+ *\n\(1 row\)\n/);
  });

  it('\\d orders describes its columns and index', async () => {
    const r = await alice('\\d orders\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Table "public.orders"');
    expect(r.stdout).toMatch(/ id +\| integer +\| +\| not null \| nextval\('orders_id_seq'::regclass\)/);
    expect(r.stdout).toMatch(/ owner +\| text +\| +\| not null \|/);
    expect(r.stdout).toMatch(/ amount +\| numeric +\| +\| +\|/);
    expect(r.stdout).toContain('Indexes:\n    "orders_pkey" PRIMARY KEY, btree (id)\n');
  });

  it('\\dn lists the schemas', async () => {
    const r = await alice('\\dn\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('List of schemas');
    expect(r.stdout).toMatch(/\n public +\| pg_database_owner\n/);
  });

  it('\\df lists functions (none: principals cannot create any)', async () => {
    const r = await alice('\\df\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('List of functions');
    expect(r.stdout).toContain('(0 rows)');
  });

  it('\\x shows a row in expanded form', async () => {
    const r = await alice('\\x\nSELECT owner, amount FROM orders;\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Expanded display is on.\n-[ RECORD 1 ]-\nowner  | alice\namount | 5\n\n');
  });

  it('\\copy loads rows from a file and writes them to one', async () => {
    const from = path.join(dir, 'in.csv');
    const to = path.join(dir, 'out.csv');
    await writeFile(from, 'alice,3\nalice,4\n');
    const r = await alice(`\\copy orders (owner, amount) FROM '${from}' WITH (FORMAT csv)\n\\copy (SELECT owner, amount FROM orders ORDER BY id) TO '${to}' WITH (FORMAT csv)\n`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('COPY 2\nCOPY 3\n');
    expect(await readFile(to, 'utf8')).toBe('alice,5\nalice,3\nalice,4\n');
    expect((await alice('DELETE FROM orders WHERE amount <> 5;\n')).stdout).toBe('DELETE 2\n');
  });
});

describe('drivers against the embedded data plane, default options', () => {
  it("postgres.js connects (its pg_type look-up) and runs a query with an array parameter", async () => {
    const sql = postgres({ host: '127.0.0.1', port: server.port, user: 'alice', pass: 'alice-pw', database: 'shop', onnotice: () => {} });
    try {
      const rows = await sql`SELECT count(*)::int AS n, ${[1, 2]}::int[] AS a FROM orders`;
      expect([...rows]).toEqual([{ n: 1, a: [1, 2] }]);
    } finally {
      await sql.end();
    }
  });

  it('SQLAlchemy (psycopg2) connects and runs a query', async () => {
    requirePython({ sqlalchemy: 'python3-sqlalchemy', psycopg2: 'python3-psycopg2' });
    const script = [
      'import sys, sqlalchemy',
      'from sqlalchemy import text',
      'port, user, password, db = sys.argv[1:5]',
      "e = sqlalchemy.create_engine(sqlalchemy.engine.URL.create('postgresql', username=user, password=password, host='127.0.0.1', port=int(port), database=db))",
      'with e.connect() as c:',
      "    print(c.execute(text('SELECT current_user')).scalar())",
      "    print(c.execute(text('SELECT owner, amount FROM orders')).all())",
      'e.dispose()',
    ].join('\n');
    const r = await program(SYSTEM_PYTHON, ['-c', script, String(server.port), 'alice', 'alice-pw', 'shop']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe("alice\n[('alice', Decimal('5'))]\n");
  });

  it('pgJDBC DatabaseMetaData.getTables lists the table', async () => {
    requireJava();
    const r = await program('java', ['-cp', PGJDBC_JAR, path.join(__dirname, 'programs/PgJdbcMetadata.java'), String(server.port), 'alice', 'alice-pw', 'shop']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('table public.orders TABLE\ncount 1\n');
  }, 60_000);
});

describe("\\du and \\l list this session's principals and databases, from the catalog", () => {
  const as = (user: string, password: string, cmd: string, db: string) => psql(server.port, ['-v', 'ON_ERROR_STOP=1'], { user, password, db, input: `${cmd}\n` });

  it('\\du as alice: herself and the roles of her tenant, none of the data plane\'s roles', async () => {
    const r = await as('alice', 'alice-pw', '\\du', 'shop');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        '                 List of roles',
        ' Role name |  Attributes  |     Member of      ',
        '-----------+--------------+--------------------',
        ' alice     |              | {readwrite,clerks}',
        ' clerks    | Cannot login | {}',
        '',
        '',
      ].join('\n'),
    );
  });

  it("\\du as another tenant's admin: that tenant's users and roles only", async () => {
    const r = await as('acme_admin', 'acme-pw', '\\du', 'acmedb');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ acme_admin +\| Create role, Create DB \| \{admin\}$/m);
    expect(r.stdout).toMatch(/^ acme_staff +\| Cannot login +\| \{\}$/m);
    const names = r.stdout.split('\n').slice(3).filter((l) => l.includes('|')).map((l) => l.split('|')[0]!.trim());
    expect(names).toEqual(['acme_admin', 'acme_staff']);
  });

  it("\\l as alice: the databases she may reach, none of another tenant's", async () => {
    const r = await as('alice', 'alice-pw', '\\l', 'shop');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        '                                         List of databases',
        '  Name   |  Owner  | Encoding | Collate | Ctype | ICU Locale | Locale Provider | Access privileges ',
        '---------+---------+----------+---------+-------+------------+-----------------+-------------------',
        ' default | default | UTF8     | C       | C     |            | libc            | ',
        ' shop    | default | UTF8     | C       | C     |            | libc            | ',
        '(2 rows)',
        '',
        '',
      ].join('\n'),
    );
  });

  it("\\l as another tenant's admin: its tenant's databases only", async () => {
    const r = await as('acme_admin', 'acme-pw', '\\l', 'acmedb');
    expect(r.stderr).toBe('');
    // Each tenant has a database called default of its own.
    const rows = r.stdout.split('\n').slice(3).filter((l) => l.includes('|')).map((l) => l.split('|').slice(0, 2).map((c) => c.trim()));
    expect(rows).toEqual([['acmedb', 'acme'], ['default', 'acme']]);
  });

  it('other queries of pg_roles still go to the data plane', async () => {
    const r = await psql(server.port, ['-At', '-c', "SELECT count(*) > 0 FROM pg_catalog.pg_roles WHERE rolname = 'pg_read_all_data'"], { user: 'alice', password: 'alice-pw', db: 'shop' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('t\n');
  });
});

// On an upstream PostgreSQL, pg_database holds every tenant's databases: \l shows the session's.
describe('\\du and \\l on an upstream PostgreSQL', () => {
  let pgsrv: PostgresServer;
  let up: RunningServer;
  const as = (user: string, password: string, cmd: string, db: string) => psql(up.port, ['-v', 'ON_ERROR_STOP=1'], { user, password, db, input: `${cmd}\n` });
  const firstColumn = (out: string) => out.split('\n').slice(3).filter((l) => l.includes('|')).map((l) => l.split('|')[0]!.trim());

  beforeAll(async () => {
    pgsrv = await startPostgres();
    await pgsrv.query("CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD 'gw'");
    const t1 = new pg.Client(pgsrv.connection(undefined, undefined, 'template1'));
    await t1.connect();
    await t1.query(superuserLockdownSql('gateway'));
    await t1.end();
    up = await startTestServer({ dataDir: path.join(dir, 'up'), dataPlane: { upstream: `postgres://gateway:gw@${pgsrv.host}:${pgsrv.port}/postgres` } });
    const setup = await psql(up.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      input: [
        'CREATE DATABASE shop;',
        "CREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;",
        'GRANT READ, WRITE ON DATABASE shop TO alice;',
        'CREATE TENANT acme;',
        'SET TENANT acme;',
        'CREATE DATABASE acmedb;',
        "CREATE USER acme_admin WITH PASSWORD 'acme-pw' ROLE admin;",
        'GRANT READ ON DATABASE acmedb TO acme_admin;',
      ].join('\n'),
    });
    expect(setup.stderr).toBe('');
    // Both tenants' databases exist in the upstream (pg_database lists them).
    expect((await as('acme_admin', 'acme-pw', 'SELECT 1;', 'acmedb')).stderr).toBe('');
    expect((await as('alice', 'alice-pw', 'SELECT 1;', 'shop')).stderr).toBe('');
  }, 180_000);

  afterAll(async () => {
    await up?.close();
    await pgsrv?.stop();
  });

  it("\\l as alice lists her databases, not acme's nor the upstream's own", async () => {
    const r = await as('alice', 'alice-pw', '\\l', 'shop');
    expect(r.stderr).toBe('');
    expect(firstColumn(r.stdout)).toEqual(['default', 'shop']);
  });

  it("\\du as acme's admin lists acme's users only", async () => {
    const r = await as('acme_admin', 'acme-pw', '\\du', 'acmedb');
    expect(r.stderr).toBe('');
    expect(firstColumn(r.stdout)).toEqual(['acme_admin']);
  });
});
