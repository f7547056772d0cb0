import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { parse, type AdminCommand } from '../../grammar/index.js';
import { isWrite } from '../../src/engine/dispatch.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * SPEC §4 as a table: every state-changing statement × each built-in role and a custom
 * role's member × an object of the actor's tenant / of another tenant. Each cell is the
 * outcome: y = allowed, d = 42501 (denied), n = 42704 (invisible, as if it did not exist),
 * u = 55006 (in use). Actors, in order: readonly, readwrite, admin, tenant_admin,
 * superuser, and a readonly member of a custom role that holds ADMIN on db_own.
 *
 * The table's type lists every command kind that is not read-only, so a new statement does
 * not compile until it has its row.
 */
type ReadOnly =
  | 'ShowUsers'
  | 'ShowTenants'
  | 'ShowDatabases'
  | 'ShowRoles'
  | 'ShowGrants'
  | 'ShowPermissions'
  | 'ShowLockouts'
  | 'ShowPools'
  | 'ShowAuditLog'
  | 'ShowApiKeys'
  | 'ShowServiceAccounts'
  | 'ShowOidcProviders'
  | 'ShowTokenIssuer'
  | 'ShowTokens'
  | 'ShowRlsPolicies'
  | 'ExplainRls'
  | 'ShowAuth'
  | 'Select'
  | 'Transaction'
  | 'SetVariable'
  | 'ResetVariable'
  | 'ShowVariable'
  | 'SetTransactionMode'
  | 'SetSessionAuthorization'
  | 'SetSessionAuthorizationJwt'
  | 'SetSessionAuthorizationApiKey'
  // A session setting (superuser only, 42501 otherwise: test/integration/tenant-scope.test.ts).
  | 'SetTenant'
  | 'DumpCatalog'
  // Session housekeeping: the session's own state, nothing in the catalog.
  | 'Discard'
  | 'Deallocate'
  | 'Close'
  | 'Unlisten'
  | 'Listen';
type WriteKind = Exclude<AdminCommand['type'], ReadOnly>;

interface Row {
  own: string;
  other: string;
  expect: { own: string; other: string };
}

const MATRIX: Record<WriteKind, Row> = {
  CreateUser: { own: 'CREATE USER x_new', other: 'CREATE USER x_new TENANT other', expect: { own: 'ddyyyd', other: 'ddddyd' } },
  AlterUser: { own: 'ALTER USER v_own CONNECTION LIMIT 3', other: 'ALTER USER v_other CONNECTION LIMIT 3', expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  RenameUser: { own: 'ALTER USER v_own RENAME TO v_renamed', other: 'ALTER USER v_other RENAME TO v_renamed', expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  UnlockUser: { own: 'ALTER USER v_own UNLOCK', other: 'ALTER USER v_other UNLOCK', expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  DropUser: { own: 'DROP USER v_own CASCADE', other: 'DROP USER v_other CASCADE', expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  CreateTenant: { own: 'CREATE TENANT t_new', other: 'CREATE TENANT t_new ID 77', expect: { own: 'ddddyd', other: 'ddddyd' } },
  DropTenant: { own: 'DROP TENANT empty_t', other: 'DROP TENANT other CASCADE', expect: { own: 'ddddyd', other: 'ddddyd' } },
  CreateDatabase: { own: 'CREATE DATABASE d_new', other: 'CREATE DATABASE d_new TENANT other', expect: { own: 'dddyyd', other: 'ddddyd' } },
  DropDatabase: { own: 'DROP DATABASE db_own CASCADE', other: 'DROP DATABASE db_other TENANT other CASCADE', expect: { own: 'nddyyd', other: 'nnnnyn' } },
  CreateRole: { own: 'CREATE ROLE r_new', other: 'CREATE ROLE r_new TENANT other', expect: { own: 'dddyyd', other: 'ddddyd' } },
  DropRole: { own: 'DROP ROLE r_own CASCADE', other: 'DROP ROLE r_other TENANT other CASCADE', expect: { own: 'dddyyd', other: 'ddddyd' } },
  Grant: { own: 'GRANT READ ON DATABASE db_own TO v_own', other: 'GRANT READ ON DATABASE db_other TO v_other', expect: { own: 'ddyyyd', other: 'ddnnyd' } },
  Revoke: { own: 'REVOKE r_own FROM v_own', other: 'REVOKE READ ON DATABASE db_other FROM v_other', expect: { own: 'dddyyd', other: 'ddnnyd' } },
  // ad and ta were granted scope s1 (nobody grants a scope they do not hold); cr was not.
  GrantScope: { own: "GRANT SCOPE 's1' TO v_own", other: "GRANT SCOPE 's1' TO v_other", expect: { own: 'ddyyyd', other: 'ddnnyd' } },
  RevokeScope: { own: "REVOKE SCOPE 's1' FROM v_own", other: "REVOKE SCOPE 's1' FROM v_other", expect: { own: 'ddyyyd', other: 'ddnnyd' } },
  CreateApiKey: { own: "CREATE API KEY 'k2' FOR v_own", other: "CREATE API KEY 'k2' FOR v_other", expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  AlterApiKey: { own: "ALTER API KEY 'k' FOR v_own SET EXPIRES NULL", other: "ALTER API KEY 'k' FOR v_other SET EXPIRES NULL", expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  DropApiKey: { own: "DROP API KEY 'k' FOR v_own", other: "DROP API KEY 'k' FOR v_other", expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  CreateServiceAccount: { own: "CREATE SERVICE ACCOUNT 'sa_new' FOR DATABASE db_own", other: "CREATE SERVICE ACCOUNT 'sa_new' FOR DATABASE db_other TENANT other", expect: { own: 'ddyyyd', other: 'nnnnyn' } },
  AlterServiceAccount: { own: "ALTER SERVICE ACCOUNT 'sa_own' SET ROLE readwrite", other: "ALTER SERVICE ACCOUNT 'sa_other' SET ROLE readwrite", expect: { own: 'ddyyyd', other: 'nnnnyn' } },
  DropServiceAccount: { own: "DROP SERVICE ACCOUNT 'sa_own' CASCADE", other: "DROP SERVICE ACCOUNT 'sa_other' CASCADE", expect: { own: 'ddyyyd', other: 'nnnnyn' } },
  CreateOidcProvider: { own: "CREATE OIDC PROVIDER p_new ISSUER 'https://i/' JWKS_URI 'https://i/j' AUDIENCE 'a'", other: "CREATE OIDC PROVIDER p_new ISSUER 'https://i/' JWKS_URI 'https://i/j' AUDIENCE 'a' TENANT other", expect: { own: 'ddddyd', other: 'ddddyd' } },
  AlterOidcProvider: { own: 'ALTER OIDC PROVIDER p_own SET (enabled = false)', other: 'ALTER OIDC PROVIDER p_other SET (enabled = false)', expect: { own: 'ddddyd', other: 'ddddyd' } },
  DropOidcProvider: { own: 'DROP OIDC PROVIDER p_own', other: 'DROP OIDC PROVIDER p_other', expect: { own: 'ddddyd', other: 'ddddyd' } },
  CreateRlsPolicy: { own: 'CREATE RLS POLICY pol2 ON db_own.t FOR READ USING (true)', other: 'CREATE RLS POLICY pol2 ON db_other.t FOR READ USING (true)', expect: { own: 'ndyyyd', other: 'nnnnnn' } },
  DropRlsPolicy: { own: 'DROP RLS POLICY pol ON db_own.t', other: 'DROP RLS POLICY pol ON db_other.t', expect: { own: 'ndyyyd', other: 'nnnnnn' } },
  // One issuer for the whole server: its superusers' alone.
  // A token is a credential of its owner: minted and revoked by whoever may make the owner's API keys.
  CreateToken: { own: "CREATE TOKEN FOR v_own EXPIRES IN '1 hour'", other: "CREATE TOKEN FOR v_other EXPIRES IN '1 hour'", expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  RevokeToken: { own: "REVOKE TOKEN 'no-such-jti'", other: "REVOKE TOKEN 'no-such-jti'", expect: { own: 'nnnnnn', other: 'nnnnnn' } },
  RevokeTokens: { own: 'REVOKE TOKENS FOR v_own', other: 'REVOKE TOKENS FOR v_other', expect: { own: 'nnyyyn', other: 'nnnnyn' } },
  AlterTokenIssuer: { own: "ALTER TOKEN ISSUER ROTATE KEY GRACE '1 minute'", other: "ALTER TOKEN ISSUER ROTATE KEY GRACE '1 minute'", expect: { own: 'ddddyd', other: 'ddddyd' } },
};

const ACTORS = ['ro', 'rw', 'ad', 'ta', 'su', 'cr'] as const;
const CODE: Record<string, string> = { '42501': 'd', '42704': 'n', '55006': 'u' };

let server: RunningServer;
const clients = new Map<string, pg.Client>();

beforeAll(async () => {
  server = await startTestServer({ scramIterations: 16 });
  const admin = await client(server.port);
  await admin.query(`
    CREATE TENANT other; CREATE TENANT empty_t;
    CREATE DATABASE db_own; CREATE DATABASE db_other TENANT other;
    CREATE USER ro PASSWORD 'pw' ROLE readonly; CREATE USER rw PASSWORD 'pw' ROLE readwrite;
    CREATE USER ad PASSWORD 'pw' ROLE admin; CREATE USER ta PASSWORD 'pw' ROLE tenant_admin;
    CREATE USER su PASSWORD 'pw' ROLE superuser; CREATE USER cr PASSWORD 'pw' ROLE readonly;
    GRANT READ ON DATABASE db_own TO ad, rw;
    CREATE ROLE crole; GRANT ADMIN ON DATABASE db_own TO crole; GRANT crole TO cr;
    CREATE USER v_own; CREATE USER v_other TENANT other;
    CREATE ROLE r_own; CREATE ROLE r_other TENANT other; GRANT r_own TO v_own;
    GRANT READ ON DATABASE db_other TO v_other;
    GRANT SCOPE 's1' TO ad, ta, v_own, v_other;
    CREATE API KEY 'k' FOR v_own; CREATE API KEY 'k' FOR v_other;
    CREATE SERVICE ACCOUNT 'sa_own' FOR DATABASE db_own;
    CREATE SERVICE ACCOUNT 'sa_other' FOR DATABASE db_other TENANT other;
    CREATE OIDC PROVIDER p_own ISSUER 'https://o/' JWKS_URI 'https://o/j' AUDIENCE 'a';
    CREATE OIDC PROVIDER p_other ISSUER 'https://x/' JWKS_URI 'https://x/j' AUDIENCE 'a' TENANT other;
    CREATE RLS POLICY pol ON db_own.t FOR READ USING (true);
  `);
  await admin.end();
  for (const a of ACTORS) clients.set(a, await client(server.port, a, 'pw'));
});
afterAll(async () => {
  for (const c of clients.values()) await c.end();
  await server.close();
});

/** The outcome of `sql` as `actor`, inside a transaction that is always rolled back. */
async function outcome(actor: string, sql: string): Promise<string> {
  const c = clients.get(actor)!;
  await c.query('BEGIN');
  try {
    await c.query(sql);
    return 'y';
  } catch (e) {
    const code = (e as { code?: string }).code ?? '?';
    return CODE[code] ?? `[${code}]`;
  } finally {
    await c.query('ROLLBACK');
  }
}

describe('privilege matrix (SPEC §4)', () => {
  for (const [kind, row] of Object.entries(MATRIX) as [WriteKind, Row][]) {
    it(`${kind}`, async () => {
      for (const where of ['own', 'other'] as const) {
        const st = parse(row[where]);
        expect(st.map((s) => s.command.type), row[where]).toEqual([kind]);
        expect(isWrite(st[0]!.command)).toBe(true);
        let got = '';
        for (const a of ACTORS) got += await outcome(a, row[where]);
        expect(`${where}: ${got}`, row[where]).toBe(`${where}: ${row.expect[where]}`);
      }
    });
  }
});
