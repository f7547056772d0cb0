import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, startTestServer } from '../support/server.js';

/**
 * SPEC §2 Names, through the real server: a name is NFC, has no white space at either end,
 * no control or format character (22023), and does not look like another name of its name
 * space (42710) — so that nobody reads as `admin` in SHOW USERS or the audit trail.
 */

const CYRILLIC_A = '\u0430'; // а
const ZWJ = '\u200d';
const E_ACUTE_NFD = 'e\u0301'; // e + combining acute: renders as é, is not NFC

let server: RunningServer;
let c: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  c = await client(server.port);
  await c.query(`CREATE TENANT acme; CREATE USER bob PASSWORD 'pw'; CREATE SERVICE ACCOUNT batch FOR DATABASE "default";
    CREATE ROLE analyst; CREATE DATABASE sales`);
});
afterAll(async () => {
  await c.end();
  await server.close();
});

/** The error a statement ends with, as node-postgres reports it. */
async function failure(sql: string): Promise<{ code: string; message: string; detail?: string; position?: string }> {
  try {
    await c.query(sql);
  } catch (err) {
    return err as { code: string; message: string; detail?: string; position?: string };
  }
  throw new Error(`expected ${JSON.stringify(sql)} to fail`);
}

const names = async (sql: string) => (await c.query(sql)).rows.map((r: { name: string }) => r.name);

/** What every name space refuses in a new name, whatever the statement (22023). */
const badText = (kind: string): [string, string, string][] => [
  ['a trailing space', 'admin ', `${kind} name "admin " ends with white space`],
  ['a leading space', ' admin', `${kind} name " admin" begins with white space`],
  ['a zero-width joiner', `ad${ZWJ}min`, `${kind} name "ad<U+200D>min" contains a format character (U+200D) at character 3`],
  ['a control character', 'ad\u0001min', `${kind} name "ad<U+0001>min" contains a control character (U+0001) at character 3`],
  ['a name that is not NFC', `caf${E_ACUTE_NFD}`, `${kind} name "caf${E_ACUTE_NFD}" is not in Unicode normalization form NFC`],
];

describe('users', () => {
  it.each(badText('user'))('refuses %s (22023)', async (_what, name, message) => {
    const e = await failure(`CREATE USER "${name}" PASSWORD 'pw'`);
    expect(e).toMatchObject({ code: '22023', message, position: '13' });
  });

  it('refuses a Cyrillic а and ADMIN beside admin (42710), naming the existing user', async () => {
    const e = await failure(`CREATE USER "${CYRILLIC_A}dmin" PASSWORD 'pw' ROLE superuser`);
    expect(e).toMatchObject({ code: '42710', message: `user "${CYRILLIC_A}dmin" looks like existing user "admin"` });
    expect(e.detail).toContain(`"${CYRILLIC_A}dmin" is U+0430 d m i n; "admin" is a d m i n.`);
    expect(await failure(`CREATE USER "ADMIN"`)).toMatchObject({ code: '42710', message: 'user "ADMIN" looks like existing user "admin"' });
    // A Greek capital alpha, folded to α, whose prototype is a.
    expect(await failure(`CREATE USER "\u0391DMIN"`)).toMatchObject({ code: '42710' });
    // IF NOT EXISTS skips only the very name: a look-alike is another name, and is refused.
    expect(await failure(`CREATE USER IF NOT EXISTS "${CYRILLIC_A}dmin"`)).toMatchObject({ code: '42710' });
    expect(await names('SHOW USERS')).toEqual(['admin', 'bob']);
  });

  it('refuses a look-alike of the reserved API key prefix (42939)', async () => {
    expect(await failure('CREATE USER "\u0440cu_x"')).toMatchObject({ code: '42939', message: 'user name "\u0440cu_x" is reserved' });
  });

  it('takes an NFC name, and refuses its upper case', async () => {
    await c.query(`CREATE USER "caf\u00e9"`);
    expect(await failure(`CREATE USER "CAF\u00c9"`)).toMatchObject({ code: '42710', message: 'user "CAF\u00c9" looks like existing user "caf\u00e9"' });
    await c.query(`DROP USER "caf\u00e9"`);
  });

  it('shares the login name space with service accounts, and the grantee names of its tenant with roles', async () => {
    expect(await failure(`CREATE USER "BATCH"`)).toMatchObject({ code: '42710', message: 'user "BATCH" looks like existing service account "batch"' });
    const e = await failure(`CREATE USER "Analyst"`);
    expect(e).toMatchObject({ code: '42710', message: 'user "Analyst" looks like existing role "analyst"' });
    expect(e.detail).toMatch(/cannot coexist among a tenant's roles and users and the built-in roles\.$/);
    await c.query('CREATE USER "Analyst" TENANT acme');
    await c.query('DROP USER "Analyst"');
  });

  it('checks RENAME TO the same way, and lets a user take its own name in another case', async () => {
    expect(await failure(`ALTER USER bob RENAME TO "${CYRILLIC_A}dmin"`)).toMatchObject({ code: '42710', message: `user "${CYRILLIC_A}dmin" looks like existing user "admin"` });
    expect(await failure('ALTER USER bob RENAME TO "bob "')).toMatchObject({ code: '22023', message: 'user name "bob " ends with white space' });
    await c.query('ALTER USER bob RENAME TO "BOB"');
    expect(await names('SHOW USERS')).toEqual(['BOB', 'admin']);
    await c.query('ALTER USER "BOB" RENAME TO bob');
  });
});

describe('service accounts', () => {
  it.each(badText('service account'))('refuses %s (22023)', async (_what, name, message) => {
    expect(await failure(`CREATE SERVICE ACCOUNT "${name}" FOR DATABASE "default"`)).toMatchObject({ code: '22023', message });
  });

  it('share the login name space with users', async () => {
    expect(await failure(`CREATE SERVICE ACCOUNT "${CYRILLIC_A}dmin" FOR DATABASE "default"`)).toMatchObject({
      code: '42710',
      message: `service account "${CYRILLIC_A}dmin" looks like existing user "admin"`,
    });
    expect(await failure(`CREATE SERVICE ACCOUNT "Batch" FOR DATABASE "default"`)).toMatchObject({
      code: '42710',
      message: 'service account "Batch" looks like existing service account "batch"',
    });
  });

  it('are checked on RENAME TO', async () => {
    await c.query('CREATE SERVICE ACCOUNT etl FOR DATABASE "default"');
    expect(await failure('ALTER SERVICE ACCOUNT etl RENAME TO "ADMIN"')).toMatchObject({ code: '42710', message: 'service account "ADMIN" looks like existing user "admin"' });
    expect(await failure('ALTER SERVICE ACCOUNT etl RENAME TO "etl "')).toMatchObject({ code: '22023', message: 'service account name "etl " ends with white space' });
    await c.query('ALTER SERVICE ACCOUNT etl RENAME TO "ETL"');
    expect(await names('SHOW SERVICE ACCOUNTS')).toEqual(['ETL', 'batch']);
  });
});

describe('roles', () => {
  it.each(badText('role'))('refuses %s (22023)', async (_what, name, message) => {
    expect(await failure(`CREATE ROLE "${name}"`)).toMatchObject({ code: '22023', message });
  });

  it('refuse a look-alike of a role, a built-in role or a user of the tenant (42710)', async () => {
    expect(await failure('CREATE ROLE "Analyst"')).toMatchObject({ code: '42710', message: 'role "Analyst" looks like existing role "analyst"' });
    expect(await failure(`CREATE ROLE "${CYRILLIC_A}dmin"`)).toMatchObject({ code: '42710', message: `role "${CYRILLIC_A}dmin" looks like existing built-in role "admin"` });
    expect(await failure('CREATE ROLE "SUPERUSER"')).toMatchObject({ code: '42710', message: 'role "SUPERUSER" looks like existing built-in role "superuser"' });
    expect(await failure('CREATE ROLE "BOB"')).toMatchObject({ code: '42710', message: 'role "BOB" looks like existing user "bob"' });
  });

  it('are a name space per tenant', async () => {
    await c.query('CREATE ROLE "Analyst" TENANT acme');
    expect(await failure('CREATE ROLE "ANALYST" TENANT acme')).toMatchObject({ code: '42710', message: 'role "ANALYST" looks like existing role "Analyst"' });
  });
});

describe('databases', () => {
  it.each(badText('database'))('refuses %s (22023)', async (_what, name, message) => {
    expect(await failure(`CREATE DATABASE "${name}"`)).toMatchObject({ code: '22023', message });
  });

  it('refuse a look-alike in the same tenant only', async () => {
    expect(await failure('CREATE DATABASE "SALES"')).toMatchObject({ code: '42710', message: 'database "SALES" looks like existing database "sales"' });
    expect(await failure(`CREATE DATABASE "s${CYRILLIC_A}les"`)).toMatchObject({ code: '42710', message: `database "s${CYRILLIC_A}les" looks like existing database "sales"` });
    await c.query('CREATE DATABASE "SALES" TENANT acme');
  });
});

describe('tenants', () => {
  it.each(badText('tenant'))('refuses %s (22023)', async (_what, name, message) => {
    expect(await failure(`CREATE TENANT "${name}"`)).toMatchObject({ code: '22023', message });
  });

  it('refuse a look-alike of a tenant', async () => {
    expect(await failure('CREATE TENANT "ACME"')).toMatchObject({ code: '42710', message: 'tenant "ACME" looks like existing tenant "acme"' });
    expect(await failure(`CREATE TENANT "${'\u0430'}cme"`)).toMatchObject({ code: '42710', message: `tenant "${CYRILLIC_A}cme" looks like existing tenant "acme"` });
  });
});

describe('the other name spaces', () => {
  it('API keys per owner', async () => {
    await c.query("CREATE API KEY ci FOR bob; CREATE API KEY ci FOR batch");
    expect(await failure('CREATE API KEY "CI" FOR bob')).toMatchObject({ code: '42710', message: 'API key "CI" looks like existing API key "ci"' });
    expect(await failure('CREATE API KEY "ci " FOR bob')).toMatchObject({ code: '22023', message: 'API key name "ci " ends with white space' });
  });

  it('OIDC providers and RLS policies', async () => {
    await c.query("CREATE OIDC PROVIDER okta ISSUER 'https://o/' JWKS_URI 'https://o/j' AUDIENCE 'a'");
    expect(await failure("CREATE OIDC PROVIDER \"OKTA\" ISSUER 'https://p/' JWKS_URI 'https://p/j' AUDIENCE 'a'")).toMatchObject({
      code: '42710',
      message: 'OIDC provider "OKTA" looks like existing OIDC provider "okta"',
    });
    await c.query('CREATE RLS POLICY own ON sales.orders FOR READ USING (true)');
    expect(await failure('CREATE RLS POLICY "OWN" ON sales.orders FOR READ USING (true)')).toMatchObject({
      code: '42710',
      message: 'RLS policy "OWN" looks like existing RLS policy "own"',
    });
    await c.query('CREATE RLS POLICY "OWN" ON sales.invoices FOR READ USING (true)');
  });
});

describe('what a psql user sees', () => {
  it('the error names both, spells them out, and points at the name', async () => {
    const r = await psql(server.port, ['-v', 'VERBOSITY=default'], { input: `CREATE USER "${CYRILLIC_A}dmin";\n` });
    expect(r.stderr).toBe(
      `ERROR:  user "${CYRILLIC_A}dmin" looks like existing user "admin"\n` +
        `LINE 1: CREATE USER "${CYRILLIC_A}dmin";\n` +
        `                    ^\n` +
        `DETAIL:  "${CYRILLIC_A}dmin" is U+0430 d m i n; "admin" is a d m i n. Names that look alike (the same Unicode TR39 confusable skeleton, ignoring case) cannot coexist among login names (users and service accounts).\n`,
    );
  });
});
