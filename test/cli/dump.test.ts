import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { ADMIN_PASSWORD, client, loginError, spawnServer, startTestServer } from '../support/server.js';

/** `portcullis dump`: the catalog as a script that `apply` restores exactly. */
const ENV = { PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD };

// Every object kind, with the options that are easy to lose: quoting, other tenants,
// expiries with fractions of a second, a rotated key's previous secret, inline JWKS.
const EVERYTHING = `
CREATE TENANT acme;
CREATE DATABASE prod;
CREATE DATABASE "Staging DB" TENANT acme;
CREATE USER alice WITH PASSWORD 'wonderland' ROLE readwrite VALID UNTIL '2030-01-01 00:00:00.5+00' CONNECTION LIMIT 4;
CREATE USER "Bob O'Neil" ROLE admin TENANT acme NOLOGIN CERTIFICATE SUBJECT 'CN=bob,O=acme';
CREATE USER "select" ROLE readonly;
CREATE ROLE analysts;
CREATE ROLE auditors TENANT acme;
GRANT READ, WRITE ON DATABASE prod TO alice;
GRANT READ ON prod.orders TO analysts;
GRANT analysts TO alice VALID UNTIL '2031-06-01 12:00:00+00';
GRANT admin TO "select" FOR INTERVAL '2 hours';
GRANT READ TO "Bob O'Neil";
CREATE SERVICE ACCOUNT batch FOR DATABASES (prod) ROLE readwrite;
CREATE SERVICE ACCOUNT "acme-etl" FOR DATABASE "Staging DB" ROLE readonly TENANT acme;
GRANT SCOPE 'read:orders', 'it''s' TO alice;
GRANT SCOPE 'reports:export' TO analysts VALID UNTIL '2031-06-01 12:00:00+00';
GRANT SCOPE 'etl:run' TO "acme-etl";
CREATE API KEY 'prod-reader' FOR alice WITH DATABASES (prod) ROLE readonly SCOPES ('read:orders', 'it''s') EXPIRES IN '90 days';
-- A key holding a scope its owner no longer holds (as keys from before scopes were
-- grantable do): clamped at use, restored as it is.
REVOKE SCOPE 'it''s' FROM alice;
CREATE API KEY ci;
CREATE API KEY nightly FOR batch;
ALTER API KEY nightly FOR batch ROTATE GRACE '1 hour';
CREATE OIDC PROVIDER auth0 WITH (issuer = 'https://acme.auth0.com/', jwks_url = 'https://acme.auth0.com/.well-known/jwks.json',
  audience = 'portcullis-api', algorithms = 'RS256, ES256', tenant_claim = 'org', max_role = 'admin');
CREATE OIDC PROVIDER local WITH (issuer = 'http://127.0.0.1:9999', audience = '*', enabled = 'false', tenant = 'acme',
  jwks = '{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRjwumMBjs-4B2Z5S8W0pRvbOtG1_yShmLqX5A0"}]}');
CREATE RLS POLICY own_orders ON prod.orders FOR READ USING (customer_id = $auth.id AND NOT (region IN ('eu', 'us') OR flagged IS NULL));
CREATE RLS POLICY tenant_only ON prod.orders FOR ALL USING ($auth.claims.org = 'acme') RESTRICTIVE;
`;

function workdir(): { dir: string; file: (name: string, text?: string) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dump-'));
  return {
    dir,
    file: (name, text) => {
      const f = path.join(dir, name);
      if (text !== undefined) writeFileSync(f, text);
      return f;
    },
  };
}

describe('portcullis dump', () => {
  it('dump → apply into an empty catalog → dump again is byte-identical, on a catalog with every object kind', async () => {
    const w = workdir();
    const source = path.join(w.dir, 'source');
    const restored = path.join(w.dir, 'restored');
    expect((await cli(['apply', '--data', source, w.file('everything.sql', EVERYTHING)], '', { env: ENV })).code).toBe(0);
    const first = await cli(['dump', '--data', source]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    for (const kind of [
      'CREATE TENANT acme ID',
      'CREATE DATABASE prod',
      'ALTER USER admin',
      'CREATE USER alice',
      'CREATE ROLE analysts',
      'CREATE SERVICE ACCOUNT batch',
      'GRANT "analysts" TO alice VALID UNTIL',
      "GRANT SCOPE 'read:orders' TO alice IMPORT",
      "GRANT SCOPE 'reports:export' TO analysts VALID UNTIL '2031-06-01 12:00:00+00' IMPORT",
      `GRANT SCOPE 'etl:run' TO "acme-etl" IMPORT (tenant = `,
      'CREATE API KEY nightly FOR batch',
      'previous_hash = ',
      'CREATE OIDC PROVIDER auth0',
      'CREATE RLS POLICY tenant_only',
    ]) {
      expect(first.stdout).toContain(kind);
    }
    // Secrets never appear: only their verifiers and hashes.
    expect(first.stdout).not.toContain('wonderland');
    expect(first.stdout).not.toMatch(/pcu_[a-z0-9]{16}_/);

    // A different bootstrap password: the dump restores the superuser's own verifier.
    const apply = await cli(['apply', '--data', restored, w.file('dump.sql', first.stdout)], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: 'something-else' } });
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    const second = await cli(['dump', '--data', restored]);
    expect(second.stdout).toBe(first.stdout);

    // What users see is restored too: SHOW output, and logins with the old passwords.
    const server = await spawnServer(['--data', restored]);
    try {
      expect(await loginError(server.port, 'alice', 'wonderland')).toBeNull();
      expect(await loginError(server.port, 'admin', ADMIN_PASSWORD)).toBeNull();
      const c = await client(server.port);
      try {
        const keys = (await c.query('SHOW API KEYS')).rows.map((r) => [r.name, r.owner, r.role, r.databases, r.scopes]);
        expect(keys).toEqual([
          ['nightly', 'batch', null, null, []],
          ['ci', 'admin', null, null, []],
          ['prod-reader', 'alice', 'readonly', ['prod'], ['read:orders', "it's"]],
        ]);
        const scopes = (await c.query('SHOW GRANTS')).rows.filter((r) => r.scope !== null).map((r) => [r.grantee, r.grantee_kind, r.scope, r.valid_until?.toISOString() ?? null]);
        expect(scopes).toEqual([
          ['analysts', 'role', 'reports:export', '2031-06-01T12:00:00.000Z'],
          ['alice', 'user', 'read:orders', null],
          ['acme-etl', 'service account', 'etl:run', null],
        ]);
      } finally {
        await c.end();
      }
    } finally {
      await server.stop();
    }
  });

  it('--url dumps a running server the same way; only a superuser may dump or IMPORT', async () => {
    const w = workdir();
    const data = path.join(w.dir, 'data');
    expect((await cli(['apply', '--data', data, w.file('everything.sql', EVERYTHING)], '', { env: ENV })).code).toBe(0);
    const offline = await cli(['dump', '--data', data]);
    const server = await spawnServer(['--data', data]);
    try {
      const online = await cli(['dump', '--url', `postgres://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/default`]);
      expect(online.stdout).toBe(offline.stdout);
      const admin = await client(server.port);
      await admin.query("CREATE USER dba WITH PASSWORD 'dba-pw' ROLE admin");
      await admin.end();
      const denied = await cli(['dump', '--url', `postgres://dba:dba-pw@127.0.0.1:${server.port}/default`]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('42501 permission denied for DUMP CATALOG');
      const dba = await client(server.port, 'dba', 'dba-pw');
      await expect(dba.query('CREATE USER x IMPORT (id = 500)')).rejects.toMatchObject({ code: '42501', message: 'permission denied to use IMPORT' });
      await dba.end();
    } finally {
      await server.stop();
    }
  });

  it('restores keys that could not be created today: expired since, or holding a scope revoked since', async () => {
    let now = Date.UTC(2026, 5, 1, 12);
    const source = await startTestServer({ clock: () => now, scramIterations: 16 });
    const target = await startTestServer({ scramIterations: 16 });
    try {
      const s = await client(source.port);
      await s.query("CREATE USER rita; GRANT SCOPE 'billing:read' TO rita");
      await s.query("CREATE API KEY 'brief' FOR rita SCOPES ('billing:read') EXPIRES IN '1 hour'");
      await s.query("REVOKE SCOPE 'billing:read' FROM rita");
      now += 2 * 3600_000;
      const dump = (await s.query('DUMP CATALOG')).rows.map((r) => r.statement as string);
      await s.end();
      expect(dump.find((x) => x.startsWith("CREATE API KEY brief"))).toContain("SCOPES ('billing:read') EXPIRES AT '2026-06-01 13:00:00+00'");
      const t = await client(target.port);
      await t.query(dump.join('\n'));
      const keys = (await t.query('SHOW API KEYS FOR rita')).rows.map((r) => [r.name, r.scopes, r.expires_at.toISOString()]);
      expect(keys).toEqual([['brief', ['billing:read'], '2026-06-01T13:00:00.000Z']]);
      await t.end();
    } finally {
      await source.close();
      await target.close();
    }
  });

  it('IMPORT refuses what it cannot restore', async () => {
    const server = await spawnServer(['--memory']);
    try {
      const c = await client(server.port);
      await expect(c.query('DROP USER nobody IMPORT (id = 5)')).rejects.toMatchObject({ code: '0A000', message: 'DROP USER does not take IMPORT' });
      await expect(c.query('CREATE USER x IMPORT (colour = 5)')).rejects.toMatchObject({ code: '22023', message: 'unknown IMPORT key "colour" for CREATE USER' });
      await expect(c.query('CREATE USER x IMPORT (id = 3)')).rejects.toMatchObject({ code: '42710', message: 'an object with id 3 already exists' });
      await expect(c.query("CREATE API KEY k IMPORT (hash = 'abc')")).rejects.toMatchObject({ code: '22023', message: 'IMPORT of key_id, hash, verifier needs all of them' });
      await expect(c.query('GRANT READ, WRITE TO admin IMPORT (id = 900)')).rejects.toMatchObject({ code: '0A000' });
      // A restored id is never handed out again.
      await c.query("CREATE USER imported IMPORT (id = 1000, created_at = '2020-02-02 02:02:02+00')");
      await c.query('CREATE USER fresh');
      const rows = (await c.query('SHOW USERS')).rows.filter((r) => r.name !== 'admin').map((r) => [r.name, Number(r.id)]);
      expect(rows).toEqual([['fresh', 1001], ['imported', 1000]]);
      await c.end();
    } finally {
      await server.stop();
    }
  });
});
