import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { makeCerts } from '../support/certs.js';
import { startNode, type PgNode } from '../support/pg-cluster.js';
import { useCatalogPostgres, within } from '../support/catalog-postgres.js';
import { RawClient } from '../support/raw-client.js';
import { client, loginError, spawnServer, startTestServer, type ServerProcess } from '../support/server.js';

/**
 * Three instances on one catalog in PostgreSQL, as users run them: a change through one
 * holds on the others within a second, lockouts count across them, an instance killed in
 * the middle of a stream of commits loses nothing it acknowledged, and PostgreSQL is
 * reached over TLS with SCRAM when the URL says so.
 */
const cat = useCatalogPostgres('three');
const procs: ServerProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop('SIGKILL');
});

async function three(catalog: string): Promise<RunningServer[]> {
  return [await cat.instance(catalog), await cat.instance(catalog), await cat.instance(catalog)];
}

/** Runs `statement` again while it fails with 40001 (another instance committed since this one last heard). */
async function retrying<T>(statement: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await statement();
    } catch (err) {
      if ((err as { code?: string }).code !== '40001') throw err;
    }
  }
}

async function lockedOn(port: number, subject: string): Promise<boolean> {
  const admin = await client(port);
  try {
    return (await admin.query('SHOW LOCKOUTS')).rows.some((r) => r.kind === 'address' && r.subject === subject);
  } finally {
    await admin.end();
  }
}

/** One pgwire login to `port` from the loopback address `from`: its SQLSTATE, or null. */
async function loginFrom(port: number, user: string, password: string, from: string): Promise<string | null> {
  const { c } = await RawClient.authenticate(port, { user }, password, from);
  try {
    const m = await Promise.race([c.until('authenticationOk').then(() => null), c.until('error')]);
    return m ? (m as unknown as { code: string }).code : null;
  } catch {
    return ((await c.until('error')) as unknown as { code: string }).code;
  } finally {
    c.end();
  }
}

describe('three instances on one catalog', () => {
  it('a user created on A logs in on B and C within a second', async () => {
    const [a, b, c] = await three(await cat.freshCatalog());
    const admin = await client(a!.port);
    await admin.query("CREATE USER vic PASSWORD 'v-secret'");
    await admin.end();
    for (const s of [b, c]) {
      const took = await within(1000, 'vic logs in', async () => (await loginError(s!.port, 'vic', 'v-secret')) === null);
      expect(took).toBeLessThan(1000);
    }
  });

  it('a REVOKE on A: the next statement of a session on B that relied on the grant is refused', async () => {
    const [a, b] = await three(await cat.freshCatalog());
    const admin = await client(a!.port);
    await admin.query("CREATE USER wes PASSWORD 'w'");
    await admin.query('GRANT tenant_admin TO wes');
    await within(1000, 'B knows wes', async () => (await loginError(b!.port, 'wes', 'w')) === null);
    const wes = await client(b!.port, 'wes', 'w');
    await within(1000, 'B has the grant', async () => {
      try {
        await wes.query("CREATE ROLE r_before");
        return true;
      } catch {
        return false;
      }
    });
    // A may not have heard of B's CREATE ROLE yet: its REVOKE then gets 40001, and is retried as a client would.
    await retrying(() => admin.query('REVOKE tenant_admin FROM wes'));
    // At once or after the version check: the first statement B runs after it hears of the
    // REVOKE is refused (no sleep: each statement is a probe that may still succeed before).
    const took = await within(1000, "wes's session on B is refused", async () => {
      try {
        await wes.query(`CREATE ROLE r_${Date.now()}`);
        return false;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // 40001: checked before B heard of the REVOKE, and refused since it was committed after it.
        if (code === '40001') return false;
        expect(code).toBe('42501');
        return true;
      }
    });
    expect(took).toBeLessThan(1000);
    await expect(wes.query('CREATE ROLE r_after')).rejects.toMatchObject({ code: '42501' });
    await wes.end();
    await admin.end();
  });

  it('21 wrong passwords from one address spread over A, B and C lock it out on all three', async () => {
    const servers = await three(await cat.freshCatalog());
    const admin = await client(servers[0]!.port);
    await admin.query("CREATE USER xan PASSWORD 'right'");
    await admin.end();
    for (const s of servers) await within(1000, 'xan logs in everywhere', async () => (await loginFrom(s.port, 'xan', 'right', '127.0.0.9')) === null);
    // Each instance sees 7: alone, none would lock (the policy locks at 20).
    for (let i = 0; i < 21; i++) expect(await loginFrom(servers[i % 3]!.port, `nobody${i}`, 'wrong', '127.0.0.8')).toBe('28P01');
    // SHOW LOCKOUTS, not a login probe: a success heard before the last failure would clear nothing here, but a probe would add a failure.
    for (const s of servers) await within(1000, 'the address is locked out everywhere', () => lockedOn(s.port, '127.0.0.8'));
    for (const s of servers) expect(await loginFrom(s.port, 'xan', 'right', '127.0.0.8')).toBe('28P01');
    for (const s of servers) expect(await loginFrom(s.port, 'xan', 'right', '127.0.0.9')).toBeNull();
  });
});

describe('an instance killed in the middle of a stream of commits', () => {
  it('SIGKILL of B: A and C go on, and every commit any of them acknowledged is there, B\'s included', async () => {
    const catalog = await cat.freshCatalog();
    for (let i = 0; i < 3; i++) procs.push(await spawnServer(['--catalog', catalog]));
    const [a, b, c] = procs as [ServerProcess, ServerProcess, ServerProcess];
    const acked: string[] = [];
    let killed = false;
    let stopAt = Infinity;
    const stream = async (p: ServerProcess, prefix: string) => {
      const conn = new pg.Client({ host: '127.0.0.1', port: p.port, user: 'admin', password: 'bootstrap-secret', database: 'default' });
      conn.on('error', () => {});
      await conn.connect();
      for (let n = 0; acked.length < stopAt; ) {
        const name = `${prefix}_${n}`;
        try {
          await conn.query(`CREATE USER ${name} PASSWORD 'p'`);
          acked.push(name);
          n++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === '40001') continue;
          if (p === b && killed) return; // its connection died with it
          throw err;
        }
      }
      await conn.end();
    };
    const load = [stream(a, 'ka'), stream(b, 'kb'), stream(c, 'kc')];
    await within(10_000, 'B has acknowledged a few commits', async () => acked.filter((n) => n.startsWith('kb')).length >= 5);
    killed = true;
    await b.stop('SIGKILL');
    const atKill = acked.length;
    await within(10_000, 'A and C go on', async () => acked.filter((n, i) => i >= atKill && n.startsWith('ka')).length >= 5 && acked.filter((n, i) => i >= atKill && n.startsWith('kc')).length >= 5);
    stopAt = 0;
    await Promise.all(load);

    const users = async (port: number) => {
      const conn = await client(port);
      const set = new Set((await conn.query('SHOW USERS')).rows.map((r) => r.name as string));
      await conn.end();
      return set;
    };
    for (const p of [a, c]) {
      await within(1000, 'every acknowledged user is on the instance', async () => {
        const have = await users(p.port);
        return acked.every((n) => have.has(n));
      });
    }
    // B started again reads them all from PostgreSQL.
    const again = await spawnServer(['--catalog', catalog]);
    procs.push(again);
    const have = await users(again.port);
    expect(acked.filter((n) => !have.has(n))).toEqual([]);
  }, 60_000);
});

describe('PostgreSQL over TLS with SCRAM', () => {
  let node: PgNode;
  let certs: ReturnType<typeof makeCerts>;
  beforeAll(async () => {
    certs = makeCerts();
    node = await startNode({ tls: certs });
    await node.query('CREATE DATABASE catalog');
  }, 60_000);
  afterAll(async () => {
    await node?.remove();
  });

  it('instances whose URL says sslmode=verify-full reach it over TLS, every connection; without TLS it refuses them', async () => {
    const url = `${node.url('catalog')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.caFile)}`;
    const [a, b] = [await startTestServer({ catalog: url, httpPort: null }), await startTestServer({ catalog: url })];
    cat.track(a);
    cat.track(b);
    const admin = await client(a.port);
    await admin.query("CREATE USER yara PASSWORD 'y'");
    await admin.end();
    await within(1000, 'yara logs in on B', async () => (await loginError(b.port, 'yara', 'y')) === null);
    const conns = await node.query<{ app: string; ssl: boolean; method: string }>(
      `SELECT a.application_name AS app, s.ssl, 'scram' AS method FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = 'catalog' AND a.application_name LIKE 'portcullis catalog%'`,
    );
    // Each instance: commits, shared counters, the audit chain, the LISTEN connection.
    expect(conns.length).toBeGreaterThanOrEqual(6);
    expect(conns.filter((r) => !r.ssl)).toEqual([]);
    // The server's pg_hba takes TCP over TLS only (SCRAM): a URL without TLS is refused, and the instance says why.
    await expect(startTestServer({ catalog: node.url('catalog') })).rejects.toThrow(/pg_hba\.conf rejects connection .*no encryption/);
    // And a certificate that does not chain to the URL's root is refused before any password is sent.
    const other = makeCerts();
    await expect(startTestServer({ catalog: `${node.url('catalog')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(other.caFile)}` })).rejects.toThrow(/certificate/);
  });
});
