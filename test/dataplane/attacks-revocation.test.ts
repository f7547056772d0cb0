import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { attempt, openShop, type Outcome, type Shop } from './attack-shop.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * Open sessions outliving a revocation: after DROP USER, DROP API KEY, REVOKE, a
 * time-bound grant's expiry, a token's exp, ALTER USER ... NOLOGIN, the session's next
 * statement on the data plane is refused (42501) or ends the session (FATAL 28000), also
 * when that statement comes inside a transaction block opened before.
 *
 * The server's clock is the real one plus `offset`: a test jumps it forward instead of
 * waiting (a token's exp has 60 s of skew); the time-bound grant's test waits on the real
 * clock.
 */
const AUD = 'shop-api';

describe.each(bothPlanes())('outliving a revocation, on the $name data plane', (plane) => {
  let shop: Shop;
  let jwks: JwksServer;
  let key: SigningKey;
  let offset = 0;
  const clock = () => Date.now() + offset;

  beforeAll(async () => {
    key = await signingKey('k1', 'ES256');
    jwks = await JwksServer.start([key]);
    const users = ['gone', 'gone_tx', 'nolog', 'nolog_tx', 'temp', 'temp_tx', 'keyed'];
    shop = await openShop(plane, {
      server: { clock },
      setup: [
        ...users.map((u) => `CREATE USER ${u} WITH PASSWORD '${u}-pw' ROLE readwrite;`),
        `GRANT READ, WRITE ON DATABASE shop TO ${users.filter((u) => !u.startsWith('temp')).join(', ')};`,
        // readonly: WRITE comes from a grant alone.
        "CREATE USER grown WITH PASSWORD 'grown-pw' ROLE readonly;",
        'GRANT READ ON DATABASE shop TO grown;',
        `CREATE OIDC PROVIDER idp WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${AUD}', max_role = 'readonly');`,
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await shop?.close();
    await jwks?.close();
  });

  const login = (user: string) => shop.connect(user, 'shop', `${user}-pw`);
  const select = (c: pg.Client): Promise<Outcome> => attempt(c, 'SELECT owner FROM orders ORDER BY owner');
  /** The session was ended: its statement failed FATAL 28000 and the next one cannot be sent. */
  async function ended(c: pg.Client, r: Outcome): Promise<void> {
    expect(r).toMatchObject({ ok: false, code: '28000' });
    expect((await select(c)).ok).toBe(false);
  }

  it('DROP USER: the open session ends at its next statement (FATAL 28000)', async () => {
    const c = await login('gone');
    expect(await select(c)).toMatchObject({ ok: true, rows: [] });
    await shop.admin('DROP USER gone');
    await ended(c, await select(c));
  });

  it('DROP USER while the session is inside a transaction block: its next statement ends it', async () => {
    // A table without a policy, so that the admin sees every row.
    await shop.admin('CREATE TABLE trail (who text)');
    const c = await login('gone_tx');
    try {
      await c.query('BEGIN');
      await c.query("INSERT INTO trail VALUES ('first')");
      await shop.admin('DROP USER gone_tx');
      await ended(c, await attempt(c, "INSERT INTO trail VALUES ('second')"));
    } finally {
      await c.end();
    }
    // Nothing of the block was committed.
    expect((await shop.admin('SELECT count(*)::int AS n FROM trail')).rows).toEqual([{ n: 0 }]);
  });

  it("DROP API KEY: the key's open session ends at its next statement, in a block or not", async () => {
    // One after the other: on the embedded plane a session waits while another's block is open.
    for (const inBlock of [false, true]) {
      const made = await shop.admin(`CREATE API KEY 'k_${inBlock}' FOR keyed WITH DATABASES (shop)`);
      const c = await shop.connect(`pcu_${made.rows[0].key_id as string}`, 'shop', made.rows[0].key as string);
      try {
        if (inBlock) await c.query('BEGIN');
        expect(await select(c)).toMatchObject({ ok: true });
        await shop.admin(`DROP API KEY 'k_${inBlock}' FOR keyed`);
        await ended(c, await select(c));
      } finally {
        await c.end();
      }
    }
  });

  it('REVOKE inside an open transaction block: its next statement ends the session (FATAL 42501), the block rolled back', async () => {
    const bob = await shop.connect('bob');
    try {
      await bob.query('BEGIN');
      await bob.query("UPDATE orders SET amount = 21 WHERE id = 2");
      await shop.admin('REVOKE READ, WRITE ON DATABASE shop FROM bob');
      const r = await select(bob);
      expect(r).toMatchObject({ ok: false, code: '42501' });
      expect(r.ok ? '' : r.message).toContain('changed inside this transaction block');
      expect((await attempt(bob, 'COMMIT')).ok).toBe(false);
    } finally {
      await shop.admin('GRANT READ, WRITE ON DATABASE shop TO bob');
      await bob.end();
    }
    // Nothing of the block was committed.
    const again = await shop.connect('bob');
    expect((await again.query('SELECT amount::int AS a FROM orders')).rows).toEqual([{ a: 20 }]);
    await again.end();
  });

  it('a GRANT inside an open transaction block takes nothing away: the block goes on, and its next turn has the new privilege', async () => {
    const c = await login('grown');
    try {
      await c.query('BEGIN');
      expect(await select(c)).toMatchObject({ ok: true, rows: [] });
      await shop.admin('GRANT WRITE ON DATABASE shop TO grown');
      // The block keeps the role it started with.
      expect(await attempt(c, "INSERT INTO orders VALUES (30, 'grown', 1)")).toMatchObject({ ok: false, code: '42501' });
      await c.query('ROLLBACK');
      expect(await attempt(c, "INSERT INTO orders VALUES (30, 'grown', 1)")).toMatchObject({ ok: true });
    } finally {
      await c.end();
    }
  });

  it("a time-bound grant FOR INTERVAL '2 seconds': the open session's statements are refused once it expires, by the real clock", async () => {
    const granted = clock();
    await shop.admin("GRANT READ ON DATABASE shop TO temp FOR INTERVAL '2 seconds'");
    const c = await login('temp');
    try {
      expect(await select(c)).toMatchObject({ ok: true, rows: [] });
      // Poll the session until it is refused: never before the grant's 2 seconds, and soon after.
      let last: Outcome;
      let at: number;
      for (;;) {
        last = await select(c);
        at = clock();
        if (!last.ok || at - granted > 10_000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(last).toMatchObject({ ok: false, code: '42501' });
      expect(at - granted).toBeGreaterThanOrEqual(2000);
      expect(at - granted).toBeLessThan(2000 + 1000);
    } finally {
      await c.end();
    }
  });

  it('a time-bound grant expiring inside an open transaction block: its next statement (extended protocol) ends the session (FATAL 42501)', async () => {
    await shop.admin("GRANT READ ON DATABASE shop TO temp_tx FOR INTERVAL '1 hour'");
    const c = await login('temp_tx');
    try {
      await c.query('BEGIN');
      expect(await select(c)).toMatchObject({ ok: true, rows: [] });
      offset += 3_600_000;
      // Over the extended protocol this time (Parse, Bind, Execute): the Execute is checked.
      const r = await attempt(c, 'SELECT owner FROM orders WHERE id > $1', [0]);
      expect(r).toMatchObject({ ok: false, code: '42501' });
      expect((await select(c)).ok).toBe(false);
    } finally {
      await c.end();
    }
  });

  it("a token's exp (plus the provider's 60 s of skew): the open session ends at its next statement, in a block or not", async () => {
    // A token's principal reaches its tenant's default database. The two sessions one after
    // the other: on the embedded plane a session waits while another's block is open.
    const read = (x: pg.Client) => attempt(x, 'SELECT count(*)::int AS n FROM pg_catalog.pg_namespace');
    for (const inBlock of [false, true]) {
      const token = await mint(key, { sub: 'u-1', role: 'readonly' }, { nowMs: clock(), issuer: jwks.issuer, audience: AUD, expiresInS: 120 });
      const c = await shop.connect('jwt:idp', 'default', token);
      try {
        if (inBlock) await c.query('BEGIN');
        expect(await read(c)).toMatchObject({ ok: true });
        // Still good just before exp + skew...
        offset += 170_000;
        expect(await read(c)).toMatchObject({ ok: true });
        // ... and not after.
        offset += 15_000;
        expect(await read(c), `in a block: ${inBlock}`).toMatchObject({ ok: false, code: '28000' });
        expect((await read(c)).ok).toBe(false);
      } finally {
        await c.end();
      }
    }
  });

  it('ALTER USER ... NOLOGIN: the open session ends at its next statement (FATAL 28000)', async () => {
    const c = await login('nolog');
    expect(await select(c)).toMatchObject({ ok: true });
    await shop.admin('ALTER USER nolog NOLOGIN');
    await ended(c, await select(c));
  });

  it('ALTER USER ... NOLOGIN while the session is inside a transaction block: its next statement ends it', async () => {
    const c = await login('nolog_tx');
    try {
      await c.query('BEGIN');
      expect(await select(c)).toMatchObject({ ok: true });
      await shop.admin('ALTER USER nolog_tx NOLOGIN');
      await ended(c, await select(c));
    } finally {
      await c.end();
    }
  });
});
