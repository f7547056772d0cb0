import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import { BUILTIN_ROLES, type BuiltinRole } from '../../src/catalog/model.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * Escalation through the role being assigned (SPEC §4): every actor × every built-in role
 * a statement would confer, on one server, each cell in a transaction that is rolled back.
 *
 * Each expected string has one letter per target role, in the order readonly, readwrite,
 * admin, tenant_admin, superuser: y = allowed, d = 42501, n = 42704 (the object is not
 * visible to the actor, so it reads as missing). Derived from SPEC §4:
 * - only a superuser creates (assigns, manages) superusers or tenant_admins;
 * - tenant_admin and admin assign roles up to their own, below tenant_admin, in their tenant;
 * - readonly and readwrite assign nothing; an API key's role is at most its owner's;
 * - nobody grants a role they do not hold; a user whose role a live GRANT raises counts at
 *   that role (v_eff_*: own role readonly, GRANT <role> on top).
 * Actors: ro, rw, ad, ta, su by password; adk is the admin ad acting through a ROLE readonly
 * API key, which acts as readonly in everything.
 */
const ACTORS = ['ro', 'rw', 'ad', 'ta', 'su', 'adk'] as const;
type Actor = (typeof ACTORS)[number];

interface Row {
  /** The statement, with <R> standing for the target role. */
  sql: string;
  expect: Record<Actor, string>;
}

// prettier-ignore
const MATRIX: Row[] = [
  { sql: 'CREATE USER m_new ROLE <R>',
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  { sql: 'ALTER USER v_readonly ROLE <R>',
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'nnnnn' } },
  // Managing a user who holds R: demoting it, resetting its password, minting it a key.
  { sql: 'ALTER USER v_<R> ROLE readonly',
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'nnnnn' } },
  { sql: "ALTER USER v_eff_<R> PASSWORD 'taken-over'",
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'nnnnn' } },
  { sql: "CREATE API KEY 'k_new' FOR v_eff_<R>",
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'nnnnn' } },
  { sql: 'DROP USER v_eff_<R>',
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'nnnnn' } },
  { sql: 'GRANT <R> TO v_readonly',
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  { sql: 'REVOKE <R> FROM v_eff_<R>',
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  { sql: 'CREATE SERVICE ACCOUNT sa_new FOR DATABASE "default" ROLE <R>',
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  { sql: "ALTER SERVICE ACCOUNT 'sa_readonly' SET ROLE <R>",
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  { sql: "ALTER SERVICE ACCOUNT 'sa_<R>' SET ROLE readonly",
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'yyydd', ta: 'yyydd', su: 'yyyyy', adk: 'ddddd' } },
  // API keys: the role at most the owner's (one's own, a user's, a service account's).
  { sql: "CREATE API KEY 'k_new' ROLE <R>",
    expect: { ro: 'ydddd', rw: 'yyddd', ad: 'yyydd', ta: 'yyyyd', su: 'yyyyy', adk: 'ydddd' } },
  { sql: "CREATE API KEY 'k_new' FOR v_readonly ROLE <R>",
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'ydddd', ta: 'ydddd', su: 'ydddd', adk: 'nnnnn' } },
  { sql: "CREATE API KEY 'k_new' FOR sa_readonly ROLE <R>",
    expect: { ro: 'ddddd', rw: 'ddddd', ad: 'ydddd', ta: 'ydddd', su: 'ydddd', adk: 'ddddd' } },
  { sql: "ALTER API KEY 'full' FOR ad SET ROLE <R>",
    expect: { ro: 'nnnnn', rw: 'nnnnn', ad: 'yyydd', ta: 'yyydd', su: 'yyydd', adk: 'ddddd' } },
];

const CODE: Record<string, string> = { '42501': 'd', '42704': 'n' };

let server: RunningServer;
const sessions = new Map<Actor, pg.Client>();
let adkKey = '';

const keyUser = (key: string) => `pcu_${parseKey(key)!.keyId}`;

async function connect(user: string, password: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password, database: 'default' });
  await c.connect();
  return c;
}

beforeAll(async () => {
  server = await startTestServer({ scramIterations: 16 });
  const su = await client(server.port);
  const setup: string[] = [];
  for (const [actor, role] of [['ro', 'readonly'], ['rw', 'readwrite'], ['ad', 'admin'], ['ta', 'tenant_admin'], ['su', 'superuser']]) {
    setup.push(`CREATE USER ${actor} PASSWORD 'pw' ROLE ${role}`);
  }
  for (const r of BUILTIN_ROLES) {
    setup.push(`CREATE USER v_${r} ROLE ${r}`, `CREATE USER v_eff_${r} ROLE readonly`);
    if (r !== 'readonly') setup.push(`GRANT ${r} TO v_eff_${r}`);
    setup.push(`CREATE SERVICE ACCOUNT 'sa_${r}' FOR DATABASE "default" ROLE ${r}`);
  }
  setup.push("CREATE API KEY 'full' FOR ad");
  await su.query(setup.join(';\n'));
  adkKey = (await su.query("CREATE API KEY 'adk' FOR ad ROLE readonly")).rows[0].key as string;
  await su.end();
  for (const a of ACTORS) sessions.set(a, a === 'adk' ? await connect(keyUser(adkKey), adkKey) : await connect(a, 'pw'));
});
afterAll(async () => {
  for (const c of sessions.values()) await c.end();
  await server.close();
});

/** The outcome of `sql` as `actor`, inside a transaction that is always rolled back. */
async function outcome(actor: Actor, sql: string): Promise<string> {
  const c = sessions.get(actor)!;
  await c.query('BEGIN');
  try {
    await c.query(sql);
    return 'y';
  } catch (e) {
    const code = (e as { code?: string }).code ?? '?';
    return CODE[code] ?? `[${code}: ${(e as Error).message}]`;
  } finally {
    await c.query('ROLLBACK');
  }
}

describe('escalation through the role being assigned (SPEC §4)', () => {
  for (const row of MATRIX) {
    it(row.sql, async () => {
      const got: Record<string, string> = {};
      for (const a of ACTORS) {
        let cells = '';
        for (const r of BUILTIN_ROLES as readonly BuiltinRole[]) cells += await outcome(a, row.sql.replaceAll('<R>', r));
        got[a] = cells;
      }
      expect(got).toEqual(row.expect);
    });
  }
});

describe('a session acting through an API key manages keys only within that key', () => {
  it('a key minted through a ROLE readonly key without ROLE is readonly, not its owner’s admin', async () => {
    const adk = sessions.get('adk')!;
    const minted = (await adk.query("CREATE API KEY 'minted'")).rows[0].key as string;
    const shown = (await adk.query('SHOW API KEYS')).rows.find((r) => r.name === 'minted');
    expect(shown).toMatchObject({ owner: 'ad', role: 'readonly' });
    const c = await connect(keyUser(minted), minted);
    expect((await c.query('SELECT $auth.role AS r')).rows).toEqual([{ r: 'readonly' }]);
    await c.end();
    await adk.query("DROP API KEY 'minted'");
  });

  it('through a service account’s key, CREATE API KEY without FOR makes a key of that service account', async () => {
    const su = await client(server.port);
    try {
      const saKey = (await su.query("CREATE API KEY 'own' FOR sa_admin")).rows[0].key as string;
      const sa = await connect(keyUser(saKey), saKey);
      const made = (await sa.query("CREATE API KEY 'made'")).rows[0].key as string;
      await sa.end();
      expect((await su.query('SHOW API KEYS FOR sa_admin')).rows.map((r) => [r.name, r.owner_kind, r.role, r.databases])).toEqual([
        ['made', 'service account', 'admin', ['default']],
        ['own', 'service account', null, null],
      ]);
      const c = await connect(keyUser(made), made);
      expect((await c.query('SELECT $auth.username AS u, $auth.role AS r')).rows).toEqual([{ u: 'sa_admin', r: 'admin' }]);
      await c.end();
    } finally {
      await su.query("DROP API KEY IF EXISTS 'made' FOR sa_admin; DROP API KEY 'own' FOR sa_admin");
      await su.end();
    }
  });

  it('it cannot rotate, widen, re-date or drop a wider key of its owner, even named FOR itself', async () => {
    const adk = sessions.get('adk')!;
    for (const sql of ["ALTER API KEY 'full' ROTATE", "ALTER API KEY 'full' FOR ad ROTATE", "ALTER API KEY 'full' SET EXPIRES NULL", "DROP API KEY 'full'", "ALTER API KEY 'adk' SET ROLE admin", "CREATE API KEY 'w' FOR ad ROLE admin"]) {
      await expect(adk.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
  });
});
