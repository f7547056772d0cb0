import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { RunningServer } from '../../src/server.js';
import { useCatalogPostgres, within } from '../support/catalog-postgres.js';
import { cli } from '../support/cli.js';
import { RawClient } from '../support/raw-client.js';
import { client, loginError, spawnServer, startTestServer, type ServerProcess } from '../support/server.js';

const cat = useCatalogPostgres('instances');

describe('two instances on one catalog in PostgreSQL', () => {
  it('a user created on A logs in on B within a second', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    const b = await cat.instance(catalog);
    const admin = await client(a.port);
    await admin.query("CREATE USER carol PASSWORD 'c-secret'");
    await admin.end();
    const took = await within(1000, 'carol logs in on B', async () => (await loginError(b.port, 'carol', 'c-secret')) === null);
    expect(took).toBeLessThan(1000);
  });

  it('DROP API KEY on A ends the session on B that logged in with it, at its next statement', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    const b = await cat.instance(catalog);
    const admin = await client(a.port);
    await admin.query("CREATE USER dave PASSWORD 'd'");
    const key = (await admin.query("CREATE API KEY 'k' FOR dave")).rows[0].key as string;
    const user = `pcu_${parseKey(key)!.keyId}`;
    const keyLogin = () => loginError(b.port, user, key);
    await within(1000, 'the key logs in on B', async () => (await keyLogin()) === null);
    const session = new pg.Client({ host: '127.0.0.1', port: b.port, user, password: key, database: 'default' });
    session.on('error', () => {});
    await session.connect();
    expect((await session.query('SELECT current_user AS u')).rows).toEqual([{ u: 'dave' }]);

    await admin.query("DROP API KEY 'k' FOR dave");
    await admin.end();
    await within(1000, 'B refuses the dropped key', async () => (await keyLogin())?.code === '28P01');
    await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000', message: 'the API key of this session no longer grants access' });
    await session.end().catch(() => undefined);
  });

  it('two instances committing the same user at once: exactly one succeeds, the other gets 40001 and its retry 42710', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    const b = await cat.instance(catalog);
    const [ca, cb] = [await client(a.port), await client(b.port)];
    try {
      // Both transactions check the name before either commits: the commits race.
      for (const c of [ca, cb]) await c.query("BEGIN; CREATE USER erin PASSWORD 'e'");
      const results = await Promise.allSettled([ca.query('COMMIT'), cb.query('COMMIT')]);
      const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code)).sort();
      expect(codes).toEqual(['40001', 'ok']);
      const loser = results[0]!.status === 'rejected' ? ca : cb;
      // The losing instance applied the winner's commit before answering: the retry sees erin.
      await expect(loser.query("CREATE USER erin PASSWORD 'e'")).rejects.toMatchObject({ code: '42710' });
      for (const s of [a, b]) {
        const c = await client(s.port);
        expect((await c.query('SHOW USERS')).rows.filter((u) => u.name === 'erin')).toHaveLength(1);
        await c.end();
      }
    } finally {
      await ca.end();
      await cb.end();
    }
  });

  it('an id handed out on B to an open transaction and used meanwhile by A: B\'s commit fails with 40001', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    const b = await cat.instance(catalog);
    const [ca, cb, watch] = [await client(a.port), await client(b.port), await client(b.port)];
    try {
      // Both instances are level: B's transaction takes the next id, and so does A's role.
      await cb.query("BEGIN; CREATE USER hal PASSWORD 'h'");
      await ca.query('CREATE ROLE auditors');
      await within(1000, 'B applies the role', async () => (await watch.query('SHOW ROLES')).rows.some((r) => r.name === 'auditors'));
      await expect(cb.query('COMMIT')).rejects.toMatchObject({ code: '40001' });
      await cb.query("CREATE USER hal PASSWORD 'h'"); // the retry takes a new id
      expect(await loginError(b.port, 'hal', 'h')).toBeNull();
    } finally {
      for (const c of [ca, cb, watch]) await c.end();
    }
  });

  it('instances started at once on an empty catalog: one bootstraps it, all serve it', async () => {
    const catalog = await cat.freshCatalog();
    const logs: string[] = [];
    // The schema exists, and its table is locked until all three instances wait to read it:
    // every one then reads the empty catalog before any has committed its bootstrap.
    const schema = new PostgresStore(catalog);
    await schema.load(() => {});
    await schema.close();
    const gate = new pg.Client({ connectionString: catalog });
    await gate.connect();
    await gate.query('BEGIN; LOCK TABLE portcullis.commits IN ACCESS EXCLUSIVE MODE');
    const start = () => startTestServer({ catalog, log: (l) => logs.push(l) }).then((s) => (cat.track(s)));
    const starting = Promise.all([start(), start(), start()]);
    await within(10_000, 'three instances wait for the catalog', async () => {
      const r = await cat.pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = $1 AND NOT l.granted`, [catalog.split('/').at(-1)]);
      return r[0]!.n === 3;
    });
    await gate.query('COMMIT');
    await gate.end();
    const servers = await starting;
    // Usually two lose the race ('another instance created the catalog first'); on a busy
    // machine a late reader hears of commit 1 before it tries: either way, one bootstrap.
    expect(logs.filter((l) => l.includes('another instance created the catalog first')).length).toBeLessThanOrEqual(2);
    for (const s of servers) expect(await loginError(s.port, 'admin', 'bootstrap-secret')).toBeNull();
    const c = new pg.Client({ connectionString: catalog });
    await c.connect();
    const inits = (await c.query(`SELECT count(*)::int AS n FROM portcullis.commits, json_array_elements(mutations) m WHERE m->>'op' = 'init'`)).rows;
    await c.end();
    expect(inits).toEqual([{ n: 1 }]);
  });

  it('many commits through both at once: each acknowledged one holds on both, in one order', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    const b = await cat.instance(catalog);
    const clients = await Promise.all([a, b, a, b].map((s) => client(s.port)));
    const acknowledged: string[] = [];
    try {
      await Promise.all(
        clients.map(async (c, i) => {
          for (let n = 0; n < 8; n++) {
            const name = `u${i}_${n}`;
            for (;;) {
              try {
                await c.query(`CREATE USER ${name} PASSWORD 'p'`);
                acknowledged.push(name);
                break;
              } catch (err) {
                if ((err as { code?: string }).code !== '40001') throw err;
              }
            }
          }
        }),
      );
    } finally {
      for (const c of clients) await c.end();
    }
    expect(acknowledged).toHaveLength(32);
    const users = async (s: RunningServer) => {
      const c = await client(s.port);
      const names = (await c.query('SHOW USERS')).rows.map((u) => u.name as string).filter((n) => n.startsWith('u'));
      await c.end();
      return names.sort();
    };
    await within(1000, 'both instances hold every acknowledged user', async () => (await users(a)).length === 32 && (await users(b)).length === 32);
    expect(await users(a)).toEqual([...acknowledged].sort());
    // The same commits applied in the same order: the same rows, ids and all.
    const show = async (s: RunningServer) => {
      const c = await client(s.port);
      const rows = (await c.query('SHOW USERS')).rows;
      await c.end();
      return rows;
    };
    expect(await show(b)).toEqual(await show(a));
  });

  it('an instance started again reloads the catalog from PostgreSQL', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog);
    let b = await cat.instance(catalog);
    const admin = await client(a.port);
    await admin.query("CREATE USER frank PASSWORD 'f1'");
    await cat.stop(b);
    await admin.query("ALTER USER frank PASSWORD 'f2'"); // while B is down
    await admin.end();
    b = await cat.instance(catalog);
    expect(await loginError(b.port, 'frank', 'f2')).toBeNull();
    expect((await loginError(b.port, 'frank', 'f1'))?.code).toBe('28P01');
    expect(await loginError(b.port, 'admin', 'bootstrap-secret')).toBeNull();
  });
});

/** One login over pgwire to `port` from the loopback address `from`: its SQLSTATE, or null on success. */
/** Whether `port`'s instance has `subject` locked out now (SHOW LOCKOUTS: unlike a probing login, it changes no counter). */
async function lockedOn(port: number, kind: 'address' | 'user', subject: string): Promise<boolean> {
  const admin = await client(port);
  try {
    return (await admin.query('SHOW LOCKOUTS')).rows.some((r) => r.kind === kind && r.subject === subject);
  } finally {
    await admin.end();
  }
}

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

describe('lockouts across instances', () => {
  it('20 wrong passwords from one address spread over A, B and C lock it out on all three; a restarted instance remembers', async () => {
    const catalog = await cat.freshCatalog();
    const servers = [await cat.instance(catalog), await cat.instance(catalog), await cat.instance(catalog)];
    const admin = await client(servers[0]!.port);
    await admin.query("CREATE USER ivy PASSWORD 'right'");
    await admin.end();
    for (const s of servers) await within(1000, 'ivy logs in everywhere', async () => (await loginFrom(s.port, 'ivy', 'right', '127.0.0.3')) === null);

    for (let i = 0; i < 20; i++) expect(await loginFrom(servers[i % 3]!.port, `nobody${i}`, 'wrong', '127.0.0.2')).toBe('28P01');
    // No instance saw more than 7 of them: each counts the others' too.
    // Waiting on SHOW LOCKOUTS, not on a login with the right password: a success heard
    // before the last failure would clear the counter and race the test.
    for (const s of servers) await within(1000, 'the address is locked out everywhere', () => lockedOn(s.port, 'address', '127.0.0.2'));
    for (const s of servers) expect(await loginFrom(s.port, 'ivy', 'right', '127.0.0.2')).toBe('28P01');
    for (const s of servers) expect(await loginFrom(s.port, 'ivy', 'right', '127.0.0.3')).toBeNull();
    const b = await client(servers[1]!.port);
    expect((await b.query('SHOW LOCKOUTS')).rows).toEqual([expect.objectContaining({ kind: 'address', subject: '127.0.0.2' })]);
    await b.end();

    const c = servers[2]!;
    await cat.stop(c);
    const again = await cat.instance(catalog);
    expect(await loginFrom(again.port, 'ivy', 'right', '127.0.0.2')).toBe('28P01');
    expect(await loginFrom(again.port, 'ivy', 'right', '127.0.0.3')).toBeNull();
  });
});

describe('user lockouts across instances', () => {
  it('10 wrong passwords for one name over A and B lock it on both; ALTER USER ... UNLOCK on A lifts it on B', async () => {
    const catalog = await cat.freshCatalog();
    const [a, b] = [await cat.instance(catalog), await cat.instance(catalog)];
    const admin = await client(a.port);
    await admin.query("CREATE USER jude PASSWORD 'right'");
    await within(1000, 'jude logs in on B', async () => (await loginFrom(b.port, 'jude', 'right', '127.0.0.4')) === null);
    // From ten addresses: only the name's counter can lock.
    for (let i = 0; i < 10; i++) expect(await loginFrom([a, b][i % 2]!.port, 'jude', 'wrong', `127.0.1.${i + 1}`)).toBe('28P01');
    for (const s of [a, b]) await within(1000, 'jude is locked everywhere', () => lockedOn(s.port, 'user', 'jude'));
    for (const s of [a, b]) expect(await loginFrom(s.port, 'jude', 'right', '127.0.0.4')).toBe('28P01');
    await admin.query('ALTER USER jude UNLOCK');
    await admin.end();
    await within(1000, 'B lifts the lock', async () => (await loginFrom(b.port, 'jude', 'right', '127.0.0.4')) === null);
  });
});

describe('portcullis serve --catalog', () => {
  let procs: ServerProcess[] = [];
  afterEach(async () => {
    for (const p of procs) await p.stop();
    procs = [];
  });

  it('serves a catalog in PostgreSQL from the flag or PORTCULLIS_CATALOG, naming it without its password', async () => {
    const catalog = await cat.freshCatalog();
    procs.push(await spawnServer(['--catalog', catalog]));
    procs.push(await spawnServer([], { PORTCULLIS_CATALOG: catalog }));
    const [a, b] = procs as [ServerProcess, ServerProcess];
    const line = `catalog: PostgreSQL ${catalog.replace(`:${cat.pg.password}@`, '@')} (schema portcullis)`;
    for (const p of procs) {
      expect(p.stderr()).toContain(line);
      expect(p.stderr()).not.toContain(cat.pg.password);
    }
    const admin = await client(a.port);
    await admin.query("CREATE USER gina PASSWORD 'g'");
    await admin.end();
    await within(1000, 'gina logs in through the other process', async () => (await loginError(b.port, 'gina', 'g')) === null);
  });

  it('refuses --catalog with --data or --memory', async () => {
    for (const other of [['--data', '/tmp/x'], ['--memory']]) {
      const r = await cli(['serve', '--catalog', 'postgres://u@127.0.0.1:1/x', ...other]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--catalog cannot be used with --data or --memory');
    }
  });
});
