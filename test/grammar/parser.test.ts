import { describe, expect, it } from 'vitest';
import { parse } from '../../grammar/index.js';
import { PgError } from '../../src/errors/pg-error.js';

const one = (sql: string) => {
  const s = parse(sql);
  expect(s).toHaveLength(1);
  return s[0]!.command;
};

function syntaxError(sql: string): PgError {
  try {
    parse(sql);
  } catch (e) {
    expect(e).toBeInstanceOf(PgError);
    expect((e as PgError).code).toBe('42601');
    return e as PgError;
  }
  throw new Error(`expected a syntax error for ${sql}`);
}

describe('grammar', () => {
  // Importing the grammar builds the parser; Chevrotain's self-analysis throws on any
  // ambiguity or left recursion, so this file failing to load is itself the test.
  it('parses CREATE USER with every option, in any case, names folded the PostgreSQL way', () => {
    expect(
      one(`create user IF NOT EXISTS "Mixed Case" with password 'pw' ROLE readwrite TENANT 1 VALID UNTIL '2030-01-01' CONNECTION LIMIT 5 NOLOGIN CERTIFICATE SUBJECT 'CN=x'`),
    ).toMatchObject({
      type: 'CreateUser',
      ifNotExists: true,
      name: { value: 'Mixed Case' },
      options: [
        { kind: 'password', value: { kind: 'string', value: 'pw' } },
        { kind: 'role', role: { value: 'readwrite' } },
        { kind: 'tenant', tenant: { id: '1' } },
        { kind: 'validUntil', value: { kind: 'string', value: '2030-01-01' } },
        { kind: 'connectionLimit', value: { kind: 'number', value: '5' } },
        { kind: 'login', value: false },
        { kind: 'certificateSubject', value: { value: 'CN=x' } },
      ],
    });
    expect(one(`CREATE USER Alice`)).toMatchObject({ name: { value: 'alice' } });
    expect(one(`CREATE USER 'batch-processor' PASSWORD NULL TENANT acme`)).toMatchObject({
      name: { value: 'batch-processor' },
      options: [{ kind: 'password', value: { kind: 'null' } }, { kind: 'tenant', tenant: { value: 'acme' } }],
    });
    // Non-reserved keywords remain usable as names.
    expect(one(`CREATE USER login LOGIN`)).toMatchObject({ name: { value: 'login' }, options: [{ kind: 'login', value: true }] });
  });

  it('parses ALTER USER forms and DROP USER lists with or without parentheses', () => {
    expect(one(`ALTER USER CURRENT_USER WITH PASSWORD $1`)).toMatchObject({
      type: 'AlterUser',
      user: { kind: 'currentUser' },
      options: [{ kind: 'password', value: { kind: 'param', index: 1 } }],
    });
    expect(one(`ALTER USER bob RENAME TO robert`)).toMatchObject({ type: 'RenameUser', newName: { value: 'robert' } });
    expect(one(`ALTER USER bob UNLOCK`)).toMatchObject({ type: 'UnlockUser' });
    expect(one(`DROP USER IF EXISTS a, "B" CASCADE`)).toMatchObject({ type: 'DropUser', ifExists: true, cascade: true, names: [{ value: 'a' }, { value: 'B' }] });
    expect(one(`DROP USER (a, b)`)).toMatchObject({ names: [{ value: 'a' }, { value: 'b' }] });
  });

  it('parses tenant and database statements', () => {
    expect(one('CREATE TENANT IF NOT EXISTS acme ID 42')).toMatchObject({ type: 'CreateTenant', ifNotExists: true, name: { value: 'acme' }, id: { value: '42' } });
    expect(one("DROP TENANT IF EXISTS 'Acme Corp' CASCADE")).toMatchObject({ type: 'DropTenant', ifExists: true, cascade: true, name: { value: 'Acme Corp' } });
    expect(one('CREATE DATABASE analytics TENANT 7')).toMatchObject({ type: 'CreateDatabase', tenant: { id: '7' } });
    expect(one('DROP DATABASE IF EXISTS analytics TENANT acme RESTRICT')).toMatchObject({ type: 'DropDatabase', ifExists: true, cascade: false, tenant: { value: 'acme' } });
    expect(parse('SHOW TENANTS; SHOW DATABASES; SHOW "databases"').map((s) => s.command.type)).toEqual(['ShowTenants', 'ShowDatabases', 'ShowVariable']);
    const e = syntaxError('CREATE TENANT acme ID x');
    expect(e.message).toBe('syntax error at or near "x"');
    expect(e.position).toBe(23);
    expect(e.hint).toBe('Expected a number.');
  });

  it('parses every GRANT / REVOKE form, roles and their SHOWs', () => {
    expect(one('GRANT READ, WRITE ON DATABASE analytics, billing TO alice, bob')).toMatchObject({
      type: 'Grant',
      items: [{ word: 'read' }, { word: 'write' }],
      target: { kind: 'databases', names: [{ value: 'analytics' }, { value: 'billing' }] },
      grantees: [{ value: 'alice' }, { value: 'bob' }],
      expiry: null,
    });
    expect(one("GRANT ALL PRIVILEGES ON COLLECTION prod.orders TO (alice) VALID UNTIL '2030-01-01'")).toMatchObject({
      items: [{ word: 'all' }],
      target: { kind: 'collection', database: { value: 'prod' }, collection: { value: 'orders' } },
      expiry: { kind: 'until', value: { value: '2030-01-01' } },
    });
    expect(one("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON prod.orders TO x FOR INTERVAL $1")).toMatchObject({
      items: [{ word: 'select' }, { word: 'insert' }, { word: 'update' }, { word: 'delete' }, { word: 'create' }],
      expiry: { kind: 'interval', value: { kind: 'param', index: 1 } },
    });
    expect(one('GRANT analyst, "Read" TO alice')).toMatchObject({ target: null, items: [{ word: 'analyst', quoted: false }, { word: 'Read', quoted: true }] });
    expect(one('REVOKE admin FROM bob')).toMatchObject({ type: 'Revoke', items: [{ word: 'admin' }], target: null });
    expect(one('REVOKE ALL ON DATABASE (a, b) FROM c')).toMatchObject({ type: 'Revoke', target: { kind: 'databases' } });
    expect(one('CREATE ROLE IF NOT EXISTS analyst TENANT acme')).toMatchObject({ type: 'CreateRole', ifNotExists: true, tenant: { value: 'acme' } });
    expect(one('DROP ROLE IF EXISTS analyst CASCADE')).toMatchObject({ type: 'DropRole', cascade: true });
    expect(parse('SHOW ROLES; SHOW GRANTS; SHOW GRANTS FOR alice; SHOW PERMISSIONS').map((s) => s.command)).toEqual([
      { type: 'ShowRoles' },
      { type: 'ShowGrants', grantee: null },
      { type: 'ShowGrants', grantee: { value: 'alice', position: 42 } },
      { type: 'ShowPermissions' },
    ]);
    const e = syntaxError('GRANT READ ON DATABASE analytics alice');
    expect(e.message).toBe('syntax error at or near "alice"');
    expect(e.position).toBe(34);
    expect(syntaxError("REVOKE READ ON DATABASE a TO b").message).toBe('syntax error at or near "TO"');
  });

  it('parses API key, service account and OIDC provider statements', () => {
    expect(one("CREATE API KEY 'prod-reader' FOR alice ROLE readonly WITH DATABASES (prod) SCOPES ('a', 'b') EXPIRES IN '90 days'")).toMatchObject({
      type: 'CreateApiKey',
      name: { value: 'prod-reader' },
      owner: { value: 'alice' },
      options: [
        { kind: 'role', role: { value: 'readonly' } },
        { kind: 'databases', names: [{ value: 'prod' }] },
        { kind: 'scopes', scopes: [{ value: 'a' }, { value: 'b' }] },
        { kind: 'expires', expiry: { kind: 'in' } },
      ],
    });
    expect(one("ALTER API KEY 'k' ROTATE GRACE '1 hour'")).toMatchObject({ change: { kind: 'rotate', grace: { value: '1 hour' } } });
    expect(one("ALTER API KEY 'k' FOR bob SET EXPIRES AT $1")).toMatchObject({ owner: { value: 'bob' }, change: { kind: 'expires', expiry: { kind: 'at' } } });
    expect(one("DROP API KEY IF EXISTS 'k'")).toMatchObject({ type: 'DropApiKey', ifExists: true });
    expect(one("CREATE SERVICE ACCOUNT 'etl' FOR DATABASES analytics, billing ROLE readwrite")).toMatchObject({
      type: 'CreateServiceAccount',
      databases: [{ value: 'analytics' }, { value: 'billing' }],
      role: { value: 'readwrite' },
    });
    expect(one("ALTER SERVICE ACCOUNT 'etl' RENAME TO 'etl2'")).toMatchObject({ change: { kind: 'rename', name: { value: 'etl2' } } });
    expect(one("CREATE OIDC PROVIDER p ISSUER 'https://i/' JWKS_URI 'https://i/j' AUDIENCE 'a' TENANT 3")).toMatchObject({
      type: 'CreateOidcProvider',
      options: [{ key: { value: 'issuer' } }, { key: { value: 'jwks_url' } }, { key: { value: 'audience' } }],
      tenant: { id: '3' },
    });
    expect(one('ALTER OIDC PROVIDER p SET (enabled = false)')).toMatchObject({ options: [{ key: { value: 'enabled' }, value: { kind: 'boolean', value: false } }] });
    expect(parse('SHOW API KEYS FOR bob; SHOW SERVICE ACCOUNTS; SHOW OIDC PROVIDERS').map((s) => s.command.type)).toEqual([
      'ShowApiKeys',
      'ShowServiceAccounts',
      'ShowOidcProviders',
    ]);
    const e = syntaxError("CREATE OIDC PROVIDER p WITH (issuer 'https://x/')");
    expect(e.message).toBe('syntax error at or near a string constant');
    expect(e.position).toBe(37);
    expect(e.hint).toBe('Expected "=".');
  });

  it('takes the tenant database `default` unquoted wherever a database name goes', () => {
    const db = { value: 'default' };
    expect(one('GRANT READ ON DATABASE default TO bob')).toMatchObject({ target: { kind: 'databases', names: [db] } });
    expect(one('REVOKE READ ON DATABASE default, "default" FROM bob')).toMatchObject({ target: { names: [db, db] } });
    expect(one('GRANT DELETE ON default.orders TO bob')).toMatchObject({ target: { kind: 'collection', database: db } });
    expect(one("CREATE API KEY 'k' WITH DATABASES (default)")).toMatchObject({ options: [{ kind: 'databases', names: [db] }] });
    expect(one("ALTER API KEY 'k' SET DATABASES default")).toMatchObject({ change: { kind: 'databases', names: [db] } });
    expect(one("CREATE SERVICE ACCOUNT 's' FOR DATABASE default")).toMatchObject({ databases: [db] });
    expect(one("ALTER SERVICE ACCOUNT 's' SET DATABASES (default, billing)")).toMatchObject({ change: { names: [db, { value: 'billing' }] } });
    expect(one('CREATE RLS POLICY p ON default.orders FOR READ USING (a = 1)')).toMatchObject({ on: { database: db } });
    expect(one('SHOW RLS POLICIES ON default.orders')).toMatchObject({ on: { database: db } });
    expect(one('DROP DATABASE default')).toMatchObject({ type: 'DropDatabase', name: db });
    // DEFAULT keeps its meaning where it is a keyword.
    expect(one('SET SESSION AUTHORIZATION DEFAULT')).toMatchObject({ type: 'SetSessionAuthorization', user: null });
  });

  it('SET SESSION AUTHORIZATION API KEY, with and without FOR; a user named api is still a user', () => {
    expect(one("SET SESSION AUTHORIZATION API KEY 'ci' FOR alice")).toMatchObject({ type: 'SetSessionAuthorizationApiKey', name: { value: 'ci', position: 35 }, owner: { value: 'alice' } });
    expect(one("set session authorization api key ci")).toMatchObject({ type: 'SetSessionAuthorizationApiKey', name: { value: 'ci' }, owner: null });
    expect(one('SET SESSION AUTHORIZATION api')).toMatchObject({ type: 'SetSessionAuthorization', user: { value: 'api' } });
  });

  it('never lists the token it points at as the one expected', () => {
    for (const sql of ['GRANT READ ON DATABASE TO bob', 'GRANT READ ON TO bob', 'GRANT READ ON DATABASE a TO TO']) {
      const e = syntaxError(sql);
      const near = /at or near "(.*)"/.exec(e.message)?.[1];
      expect(near, sql).toBeDefined();
      expect(e.hint ?? '', sql).not.toMatch(new RegExp(`\\b${near}\\b`, 'i'));
    }
    expect(syntaxError('GRANT READ ON DATABSE x TO bob').hint).toBe('Expected ".".');
  });

  it('parses RLS policies with the predicate language, precedence and all', () => {
    expect(one('CREATE RLS POLICY own ON prod.orders FOR READ USING (customer_id = $auth.id)')).toMatchObject({
      type: 'CreateRlsPolicy',
      on: { database: { value: 'prod' }, collection: { value: 'orders' } },
      kind: 'read',
      restrictive: false,
      predicate: { kind: 'compare', op: '=', left: { kind: 'column', path: ['customer_id'] }, right: { kind: 'auth', path: ['id'] } },
    });
    // a OR b AND NOT c: AND binds tighter than OR, NOT tighter than AND.
    const p = (one('CREATE RLS POLICY p ON o FOR ALL USING (a = 1 OR b <> 2 AND NOT c IS NULL) RESTRICTIVE') as { predicate: unknown; restrictive: boolean });
    expect(p.restrictive).toBe(true);
    expect(p.predicate).toMatchObject({
      kind: 'or',
      left: { kind: 'compare', op: '=' },
      right: { kind: 'and', left: { kind: 'compare', op: '<>' }, right: { kind: 'not', expr: { kind: 'isNull', negated: false } } },
    });
    // An AND chain is a balanced tree (AND is associative; the depth stays log2 n).
    expect((one("CREATE RLS POLICY p ON o FOR WRITE USING (x NOT IN ('a', $auth.org_id) AND $auth.scopes CONTAINS 'w' AND y != 1 AND z <= 2)") as { predicate: unknown }).predicate).toMatchObject({
      kind: 'and',
      left: { kind: 'and', left: { kind: 'not', expr: { kind: 'in' } }, right: { kind: 'contains' } },
      right: { kind: 'and', left: { kind: 'compare', op: '<>' }, right: { kind: 'compare', op: '<=' } },
    });
    expect(one('DROP RLS POLICY IF EXISTS p ON orders')).toMatchObject({ type: 'DropRlsPolicy', on: { database: null, collection: { value: 'orders' } } });
    expect(one('EXPLAIN RLS ON prod.orders FOR WRITE')).toMatchObject({ type: 'ExplainRls', kind: 'write' });
    expect(one('SHOW RLS POLICIES ON prod.orders')).toMatchObject({ type: 'ShowRlsPolicies', on: { collection: { value: 'orders' } } });
    const e = syntaxError('CREATE RLS POLICY p ON o FOR READ USING (a = = 1)');
    expect(e.message).toBe('syntax error at or near "="');
    expect(e.position).toBe(46);
  });

  it('points at the typical mistake in each remaining family', () => {
    const key = syntaxError("CREATE API KEY 'k' WITH DATABASE (prod)");
    expect([key.message, key.position, key.hint]).toEqual(['syntax error at or near "DATABASE"', 25, 'Expected DATABASES.']);
    const sa = syntaxError("CREATE SERVICE ACCOUNT 'etl' FOR analytics");
    expect([sa.message, sa.position]).toEqual(['syntax error at or near "analytics"', 34]);
    const auth = syntaxError('SET SESSION AUTHORIZATION JWT PROVIDER p');
    expect([auth.message, auth.position]).toEqual(['syntax error at end of input', 41]);
    const set = syntaxError('SET application_name');
    expect([set.message, set.position]).toEqual(['syntax error at end of input', 21]);
    const grant = syntaxError('GRANT READ ON DATABASE analytics FROM bob');
    expect([grant.message, grant.position]).toEqual(['syntax error at or near "FROM"', 34]);
  });

  it('parses strings: doubled quotes, E-escapes, dollar quoting, no backslash escapes in standard strings', () => {
    const pw = (sql: string) => (one(sql) as { options: { value: { value: string } }[] }).options[0]!.value.value;
    expect(pw(`ALTER USER a PASSWORD 'it''s'`)).toBe("it's");
    expect(pw(`ALTER USER a PASSWORD E'a\\nb\\''`)).toBe("a\nb'");
    expect(pw(`ALTER USER a PASSWORD $$o'k$$`)).toBe("o'k");
    expect(pw(`ALTER USER a PASSWORD $x$a$$b$x$`)).toBe('a$$b');
    expect(pw(`ALTER USER a PASSWORD 'C:\\dir'`)).toBe('C:\\dir');
  });

  it('parses several statements, comments, and the empty query', () => {
    expect(parse('')).toEqual([]);
    expect(parse(' ; -- nothing\n ; /* a /* nested */ comment */')).toEqual([]);
    const s = parse('SHOW USERS; SELECT 1 -- trailing\n; BEGIN');
    expect(s.map((x) => x.command.type)).toEqual(['ShowUsers', 'Select', 'Transaction']);
    expect(s[1]!.start).toBe(12);
  });

  it('parses SELECT of $auth variables, functions, literals, parameters and casts', () => {
    expect(one(`SELECT $auth.id, $AUTH.claims.org, current_user, session_user, current_database(), version(), 'x' AS y, 1 z, true, NULL, $1::int`)).toMatchObject({
      type: 'Select',
      items: [
        { expr: { kind: 'auth', path: ['id'] } },
        { expr: { kind: 'auth', path: ['claims', 'org'] } },
        { expr: { kind: 'function', name: 'current_user', call: false } },
        { expr: { kind: 'function', name: 'session_user' } },
        { expr: { kind: 'function', name: 'current_database', call: true } },
        { expr: { kind: 'function', name: 'version' } },
        { alias: 'y' },
        { alias: 'z' },
        { expr: { kind: 'value', value: { kind: 'boolean', value: true } } },
        { expr: { kind: 'value', value: { kind: 'null' } } },
        { expr: { kind: 'cast', type: 'int', expr: { kind: 'value', value: { kind: 'param', index: 1 } } } },
      ],
    });
    expect(parse('SELECT $2, $1')[0]!.paramCount).toBe(2);
  });

  it('parses what drivers send on connect: SET, RESET, SHOW, transaction statements', () => {
    const types = parse(`SET extra_float_digits = 3; SET application_name = 'PostgreSQL JDBC Driver'; SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED;
      SET TIME ZONE 'Europe/Berlin'; SET NAMES 'UTF8'; SET LOCAL search_path TO a, "b"; SET datestyle TO DEFAULT; RESET ALL; RESET TimeZone; SHOW TRANSACTION ISOLATION LEVEL;
      SHOW server_version; BEGIN; START TRANSACTION READ WRITE, ISOLATION LEVEL SERIALIZABLE; COMMIT WORK; END; ROLLBACK; ABORT TRANSACTION; SET my.custom = on`).map((s) => s.command);
    expect(types[0]).toMatchObject({ type: 'SetVariable', name: 'extra_float_digits', value: '3' });
    expect(types[3]).toMatchObject({ type: 'SetVariable', name: 'timezone', value: 'Europe/Berlin' });
    expect(types[4]).toMatchObject({ type: 'SetVariable', name: 'client_encoding', value: 'UTF8' });
    expect(types[5]).toMatchObject({ type: 'SetVariable', name: 'search_path', value: 'a, b', local: true });
    expect(types[6]).toMatchObject({ type: 'SetVariable', name: 'datestyle', value: null });
    expect(types[7]).toMatchObject({ type: 'ResetVariable', name: null });
    expect(types[9]).toMatchObject({ type: 'ShowVariable', name: 'transaction_isolation' });
    expect(types.slice(11, 17).map((t) => (t as { action: string }).action)).toEqual(['begin', 'begin', 'commit', 'commit', 'rollback', 'rollback']);
    expect(types[17]).toMatchObject({ type: 'SetVariable', name: 'my.custom', value: 'on' });
  });

  it('reports syntax errors the PostgreSQL way, with position and what was expected', () => {
    const e = syntaxError('CREATE USR x');
    expect(e.message).toBe('syntax error at or near "USR"');
    expect(e.position).toBe(8);
    expect(e.hint).toMatch(/^Expected USER, TENANT, DATABASE, ROLE, .* or [A-Z]+\.$/);
    const end = syntaxError('CREATE USER');
    expect(end.message).toBe('syntax error at end of input');
    expect(end.position).toBe(12);
    // String contents never appear in an error: they may be passwords.
    expect(syntaxError(`ALTER USER a PASSWORD 'hunter2`).message).toBe('unterminated quoted string');
    expect(syntaxError(`ALTER USER a PASSWORD 'hunter2`).position).toBe(23);
    expect(syntaxError(`ALTER USER a PASSWORD $$hunter2`).message).toBe('unterminated dollar-quoted string');
    expect(syntaxError(`CREATE USER a LOGIN 'hunter2'`).message).toBe('syntax error at or near a string constant');
    expect(syntaxError(`SELECT "abc`).message).toMatch(/unterminated quoted identifier/);
    expect(syntaxError(`SELECT 1 /* open`).message).toMatch(/unterminated \/\* comment/);
    expect(syntaxError('SHOW USERS SHOW USERS').position).toBe(12);
    // Positions count characters, not UTF-16 code units.
    expect(syntaxError(`SELECT '🦀' oops oops`).position).toBe(17);
    expect(syntaxError('CREATE USER a WITH LOGIN LOGIN2').message).toBe('syntax error at or near "LOGIN2"');
  });
});
