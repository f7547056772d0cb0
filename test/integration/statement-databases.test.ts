import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, type AdminCommand, type Name } from '../../grammar/index.js';
import { parseKey } from '../../src/auth/apikey.js';
import { statementDatabases } from '../../src/engine/dispatch.js';
import { STATEMENTS, type StatementType } from '../../src/engine/statements.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * An API key that reaches only some databases is refused, before the statement runs, any
 * statement naming another (SPEC §6, DATABASE_NOT_AUTHORIZED). Which databases a statement
 * names is a fact of its row in the statement table (src/engine/statements.ts); the table's
 * type makes every row give one, but cannot tell a wrong `noDatabases`. So, for samples of
 * every statement type (a new type does not compile here until it has one): every database
 * the AST names, found by walking it without the table, is what the table gives; and over a
 * real socket, each sample naming `elsewhere` is refused to a key for `default` alone, while
 * the same statement naming `default` is not refused for its database.
 */
const SAMPLES: { readonly [K in StatementType]: readonly string[] } = {
  CreateUser: ["CREATE USER zed WITH PASSWORD 'pw' ROLE readonly"],
  AlterUser: ['ALTER USER zed CONNECTION LIMIT 2'],
  RenameUser: ['ALTER USER zed RENAME TO zed2'],
  UnlockUser: ['ALTER USER zed UNLOCK'],
  DropUser: ['DROP USER zed'],
  ShowUsers: ['SHOW USERS'],
  CreateTenant: ['CREATE TENANT acme'],
  DropTenant: ['DROP TENANT acme'],
  ShowTenants: ['SHOW TENANTS'],
  CreateDatabase: ['CREATE DATABASE elsewhere', 'CREATE DATABASE elsewhere TENANT acme'],
  DropDatabase: ['DROP DATABASE elsewhere', 'DROP DATABASE elsewhere TENANT acme CASCADE'],
  ShowDatabases: ['SHOW DATABASES'],
  CreateRole: ['CREATE ROLE clerks'],
  DropRole: ['DROP ROLE clerks'],
  ShowRoles: ['SHOW ROLES'],
  Grant: ['GRANT READ ON DATABASE elsewhere TO zed', 'GRANT READ, WRITE ON DATABASE default, elsewhere TO zed', 'GRANT WRITE ON elsewhere.orders TO zed', 'GRANT READ TO zed', 'GRANT clerks TO zed'],
  Revoke: ['REVOKE READ ON DATABASE elsewhere FROM zed', 'REVOKE WRITE ON elsewhere.orders FROM zed', 'REVOKE clerks FROM zed'],
  GrantScope: ["GRANT SCOPE 'read:orders' TO zed"],
  RevokeScope: ["REVOKE SCOPE 'read:orders' FROM zed"],
  ShowGrants: ['SHOW GRANTS', 'SHOW GRANTS FOR zed'],
  ShowPermissions: ['SHOW PERMISSIONS'],
  ShowLockouts: ['SHOW LOCKOUTS'],
  ShowPools: ['SHOW POOLS'],
  ShowAuditLog: ['SHOW AUDIT LOG LIMIT 1'],
  CreateApiKey: ["CREATE API KEY 'k2' FOR zed WITH DATABASES (elsewhere) ROLE readonly", "CREATE API KEY 'k3' FOR zed"],
  AlterApiKey: ["ALTER API KEY 'k2' FOR zed SET DATABASES (elsewhere)", "ALTER API KEY 'k2' FOR zed SET ROLE readwrite", "ALTER API KEY 'k2' FOR zed ROTATE"],
  DropApiKey: ["DROP API KEY 'k2' FOR zed"],
  ShowApiKeys: ['SHOW API KEYS', 'SHOW API KEYS FOR zed'],
  CreateServiceAccount: ['CREATE SERVICE ACCOUNT batch FOR DATABASE elsewhere ROLE readonly'],
  AlterServiceAccount: ['ALTER SERVICE ACCOUNT batch SET DATABASES (elsewhere)', 'ALTER SERVICE ACCOUNT batch SET ROLE readwrite', 'ALTER SERVICE ACCOUNT batch RENAME TO batch2'],
  DropServiceAccount: ['DROP SERVICE ACCOUNT batch'],
  ShowServiceAccounts: ['SHOW SERVICE ACCOUNTS'],
  CreateOidcProvider: ["CREATE OIDC PROVIDER p WITH (issuer = 'https://x/', jwks_url = 'https://x/j', audience = 'a')"],
  AlterOidcProvider: ['ALTER OIDC PROVIDER p SET (enabled = false)'],
  DropOidcProvider: ['DROP OIDC PROVIDER p'],
  ShowOidcProviders: ['SHOW OIDC PROVIDERS'],
  ShowTokenIssuer: ['SHOW TOKEN ISSUER'],
  CreateToken: ["CREATE TOKEN FOR zed WITH DATABASES (elsewhere) EXPIRES IN '1 hour'", "CREATE TOKEN FOR zed EXPIRES IN '1 hour'"],
  ShowTokens: ['SHOW TOKENS', 'SHOW TOKENS FOR zed'],
  RevokeToken: ["REVOKE TOKEN 'abc'"],
  RevokeTokens: ['REVOKE TOKENS FOR zed'],
  AlterTokenIssuer: ["ALTER TOKEN ISSUER ROTATE KEY GRACE '5 minutes'"],
  CreateRlsPolicy: ['CREATE RLS POLICY own ON elsewhere.orders FOR READ USING (owner = $auth.id)', 'CREATE RLS POLICY own ON orders FOR READ USING (owner = $auth.id)'],
  DropRlsPolicy: ['DROP RLS POLICY own ON elsewhere.orders', 'DROP RLS POLICY own ON orders'],
  ShowRlsPolicies: ['SHOW RLS POLICIES ON elsewhere.orders', 'SHOW RLS POLICIES'],
  ExplainRls: ['EXPLAIN RLS ON elsewhere.orders FOR WRITE', 'EXPLAIN RLS ON orders'],
  SetSessionAuthorization: ['SET SESSION AUTHORIZATION zed', 'RESET SESSION AUTHORIZATION'],
  SetSessionAuthorizationJwt: [`SET SESSION AUTHORIZATION JWT PROVIDER p CLAIMS '{"sub": "u1"}'`],
  SetSessionAuthorizationApiKey: ["SET SESSION AUTHORIZATION API KEY 'k2' FOR zed"],
  SetTenant: ['SET TENANT acme', 'RESET TENANT'],
  ShowAuth: ['SHOW AUTH'],
  DumpCatalog: ['DUMP CATALOG'],
  Select: ['SELECT current_database(), $auth.databases'],
  Transaction: ['BEGIN'],
  SetVariable: ["SET application_name = 'x'"],
  ResetVariable: ['RESET ALL'],
  ShowVariable: ['SHOW application_name'],
  SetTransactionMode: ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE'],
  Discard: ['DISCARD ALL'],
  Deallocate: ['DEALLOCATE ALL'],
  Close: ['CLOSE ALL'],
  Unlisten: ['UNLISTEN *'],
  Listen: ['LISTEN jobs'],
};

const isName = (v: unknown): v is Name => typeof v === 'object' && v !== null && typeof (v as Name).value === 'string' && typeof (v as Name).position === 'number';

/**
 * Every database the AST names, read from its shape alone: a `database` (db.collection), a
 * `databases` list, a `{ kind: 'databases', names }` clause (ON DATABASE, WITH / SET
 * DATABASES), and the name of a statement about a database (CREATE / DROP DATABASE).
 */
function namedDatabases(cmd: AdminCommand): Name[] {
  const out: Name[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (typeof node !== 'object' || node === null) return;
    const o = node as Record<string, unknown>;
    if (o.kind === 'databases' && Array.isArray(o.names)) out.push(...o.names.filter(isName));
    for (const [k, v] of Object.entries(o)) {
      if (k === 'database' && isName(v)) out.push(v);
      else if (k === 'databases' && Array.isArray(v)) out.push(...v.filter(isName));
      else walk(v);
    }
  };
  walk(cmd);
  if (cmd.type === 'CreateDatabase' || cmd.type === 'DropDatabase') out.push(cmd.name);
  return out;
}

const key = (ns: Name[]) => ns.map((n) => `${n.value}@${n.position}`).sort();

const allSamples = (Object.entries(SAMPLES) as [StatementType, readonly string[]][]).flatMap(([type, sqls]) => sqls.map((sql) => ({ type, sql })));

describe('the databases each statement names', () => {
  it('has samples of every statement type of the statement table', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(STATEMENTS).sort());
  });

  it.each(allSamples)('$type: $sql', ({ type, sql }) => {
    const [st] = parse(sql);
    expect(st!.command.type).toBe(type);
    const named = namedDatabases(st!.command);
    // The walk above sees what the sample writes (so an AST renamed under it cannot pass blind).
    expect(named.some((n) => n.value === 'elsewhere')).toBe(sql.includes('elsewhere'));
    expect(key(statementDatabases(st!.command))).toEqual(key(named));
  });
});

describe('an API key for the default database, over pgwire', () => {
  let server: RunningServer;
  let admin: pg.Client;
  let keyClient: pg.Client;

  beforeAll(async () => {
    server = await startTestServer({ scramIterations: 16 });
    admin = await client(server.port);
    await admin.query("CREATE DATABASE elsewhere; CREATE USER ada PASSWORD 'pw' ROLE admin; GRANT ALL ON DATABASE elsewhere TO ada");
    const k = (await admin.query("CREATE API KEY 'narrow' FOR ada ROLE admin WITH DATABASES (default)")).rows[0].key as string;
    keyClient = new pg.Client({ host: '127.0.0.1', port: server.port, user: `pcu_${parseKey(k)!.keyId}`, password: k, database: 'default' });
    keyClient.on('error', () => {});
    await keyClient.connect();
  });
  afterAll(async () => {
    await keyClient.end();
    await admin.end();
    await server.close();
  });

  /** The statement's error in a transaction rolled back afterwards (null: it ran). */
  async function errorOf(sql: string): Promise<{ code?: string; message: string } | null> {
    await keyClient.query('BEGIN');
    try {
      await keyClient.query(sql);
      return null;
    } catch (err) {
      return err as { code?: string; message: string };
    } finally {
      await keyClient.query('ROLLBACK');
    }
  }

  it.each(allSamples.filter((s) => s.sql.includes('elsewhere')))('refuses $sql with DATABASE_NOT_AUTHORIZED, and not the same naming default', async ({ sql }) => {
    const refused = await errorOf(sql);
    expect(refused).toMatchObject({ code: '42501', message: expect.stringContaining('DATABASE_NOT_AUTHORIZED: this credential does not reach database "elsewhere"') });
    const reached = await errorOf(sql.replaceAll('elsewhere', 'default'));
    expect(reached?.message ?? '').not.toContain('DATABASE_NOT_AUTHORIZED');
  });
});
