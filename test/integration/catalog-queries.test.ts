import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, startTestServer } from '../support/server.js';

// SQL that is not the admin language (tools' catalog queries) is told from a typo by
// PostgreSQL's own parser: 0A000 with a hint naming the admin statement, never 42601.
let server: RunningServer;
let c: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  c = await client(server.port);
});
afterAll(async () => {
  await c.end();
  await server.close();
});

const NOT_ADMIN = 'portcullis answers only its admin language on this connection';

async function errorOf(sql: string): Promise<{ code: string; message: string; hint?: string; position?: string }> {
  try {
    await c.query(sql);
  } catch (err) {
    return err as { code: string; message: string; hint?: string; position?: string };
  }
  throw new Error(`${sql} succeeded`);
}

describe('SQL that is not the admin language', () => {
  it('answers psql \\du, \\l and \\dt with 0A000 and a hint naming the statement to use', async () => {
    const r = await psql(server.port, ['-d', 'default', '-c', '\\du', '-c', '\\l', '-c', '\\dt', '-c', 'SHOW AUTH']);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR:'));
    expect(errors).toEqual([`ERROR:  ${NOT_ADMIN}`, `ERROR:  ${NOT_ADMIN}`, `ERROR:  ${NOT_ADMIN}`]);
    expect(r.stderr).toContain('HINT:  pg_roles is a PostgreSQL catalog; here, SHOW USERS answers that.');
    expect(r.stderr).toContain('HINT:  pg_database is a PostgreSQL catalog; here, SHOW DATABASES answers that.');
    expect(r.stderr).not.toContain('syntax error');
    expect(r.stdout).toContain('$auth.username'); // the session went on
  });

  it("names the session's database in \\conninfo when psql names it", async () => {
    const r = await psql(server.port, ['-d', 'default', '-c', '\\conninfo', '-c', 'SELECT current_database()', '-At']);
    expect(r.stdout).toContain('You are connected to database "default" as user "admin"');
    expect(r.stdout).toContain('\ndefault\n');
  });

  it('answers SELECT * FROM pg_roles with 0A000 pointing at the catalog', async () => {
    expect(await errorOf('SELECT * FROM pg_roles')).toMatchObject({
      code: '0A000',
      message: NOT_ADMIN,
      hint: 'pg_roles is a PostgreSQL catalog; here, SHOW USERS answers that.',
      position: '15',
    });
    expect(await errorOf('select datname from pg_catalog.pg_database')).toMatchObject({ code: '0A000', hint: 'pg_database is a PostgreSQL catalog; here, SHOW DATABASES answers that.' });
    // Positions count characters, not UTF-8 bytes.
    expect(await errorOf("SELECT '\u00e9\u00e9\u{1F600}' AS x FROM pg_roles")).toMatchObject({ code: '0A000', position: '24' });
  });

  it("answers drivers' pg_type look-ups (postgres.js, psycopg2's hstore) with 0A000 and the general hint", async () => {
    const postgresJs = `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'
      group by b.oid, b.typarray
      order by b.oid`;
    expect(await errorOf(postgresJs)).toMatchObject({ code: '0A000', message: NOT_ADMIN, hint: expect.stringContaining('SHOW USERS'), position: '8' });
    const hstore = "SELECT t.oid, typarray\nFROM pg_type t JOIN pg_namespace ns\n    ON typnamespace = ns.oid\nWHERE typname = 'hstore';\n";
    expect(await errorOf(hstore)).toMatchObject({ code: '0A000', message: NOT_ADMIN });
    expect((await c.query('SELECT current_user')).rows).toEqual([{ current_user: 'admin' }]);
  });

  it('refuses a whole message when one statement of it is SQL, before any of it runs', async () => {
    expect(await errorOf('CREATE USER mixed_1; SELECT * FROM pg_roles; CREATE USER mixed_2')).toMatchObject({ code: '0A000', position: '36' });
    const users = await c.query('SHOW USERS');
    expect(users.rows.map((u) => u.name)).not.toContain('mixed_1');
  });

  it('keeps 42601 with its position for what PostgreSQL cannot parse either', async () => {
    expect(await errorOf('SELEC 1')).toMatchObject({ code: '42601', message: 'syntax error at or near "SELEC"', position: '1' });
    expect(await errorOf('CREATE USR alice')).toMatchObject({ code: '42601', position: '8' });
    expect(await errorOf("CREATE API KEY 'k' FOR; SELECT * FROM pg_roles")).toMatchObject({ code: '42601' });
  });

  it('answers the same through the extended protocol, and the connection goes on', async () => {
    await expect(c.query({ name: 'roles', text: 'SELECT rolname FROM pg_roles WHERE rolname = $1', values: ['admin'] })).rejects.toMatchObject({ code: '0A000', message: NOT_ADMIN });
    expect((await c.query({ name: 'auth', text: 'SHOW AUTH' })).rows.length).toBeGreaterThan(5);
  });

  it('fails a transaction block like any error', async () => {
    await c.query('BEGIN');
    await expect(c.query('SELECT * FROM pg_roles')).rejects.toMatchObject({ code: '0A000' });
    await expect(c.query('SHOW USERS')).rejects.toMatchObject({ code: '25P02' });
    await c.query('ROLLBACK');
  });

  it('answers the functions drivers call at connect, and refuses those only PostgreSQL has', async () => {
    expect((await c.query('select pg_catalog.version()')).rows[0].version).toMatch(/^PostgreSQL 16\.0 \(portcullis /);
    const schema = await c.query('select current_schema()');
    expect(schema.rows).toEqual([{ current_schema: null }]);
    expect(schema.fields[0]!.dataTypeID).toBe(19); // name
    expect(await errorOf('SELECT pg_backend_pid()')).toMatchObject({ code: '0A000', message: NOT_ADMIN, position: '8' });
    expect(await errorOf('SELECT nosuch()')).toMatchObject({ code: '42883' });
  });
});
