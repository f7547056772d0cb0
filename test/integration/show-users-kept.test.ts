import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, startTestServerWith } from '../support/server.js';

/**
 * SHOW USERS keeps a small result whole and sends its cached bytes while nothing it shows
 * has changed (src/engine/results.ts memoResult). Each case shows it twice first, so the
 * kept copy is what a stale or shared cache would serve next.
 */
let server: RunningServer;
let admin: pg.Client;
let acme: pg.Client;

beforeAll(async () => {
  server = await startTestServerWith([
    'CREATE TENANT acme;',
    'CREATE TENANT globex;',
    "CREATE USER acme_admin PASSWORD 'pw' ROLE tenant_admin TENANT acme;",
    "CREATE USER acme_ops PASSWORD 'pw' ROLE admin TENANT acme;",
    "CREATE USER globex_admin PASSWORD 'pw' ROLE tenant_admin TENANT globex;",
  ]);
  admin = await client(server.port);
  acme = await client(server.port, 'acme_admin', 'pw');
});
afterAll(async () => {
  await admin.end();
  await acme.end();
  await server.close();
});

/** Values as the server sent them (no Date parsing), so the time zone shows. */
const asText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
const names = async (c: pg.Client) => (await c.query('SHOW USERS')).rows.map((r) => r.name as string);
const shownTwice = async (c: pg.Client) => {
  const first = await c.query({ text: 'SHOW USERS', types: asText });
  const second = await c.query({ text: 'SHOW USERS', types: asText });
  expect(second.rows).toEqual(first.rows);
  return first.rows;
};

describe('SHOW USERS kept whole', () => {
  it('shows a change made by another session right after', async () => {
    await shownTwice(admin);
    const other = await client(server.port);
    try {
      await other.query('CREATE USER kept_new');
      expect(await names(admin)).toContain('kept_new');
      await other.query('ALTER USER kept_new CONNECTION LIMIT 7');
      expect((await admin.query('SHOW USERS')).rows.find((r) => r.name === 'kept_new')?.connection_limit).toBe(7);
      await other.query('ALTER USER kept_new RENAME TO kept_renamed');
      const after = await names(admin);
      expect(after).toContain('kept_renamed');
      expect(after).not.toContain('kept_new');
      await other.query('DROP USER kept_renamed');
      expect(await names(admin)).not.toContain('kept_renamed');
    } finally {
      await other.end();
    }
  });

  it('keeps one list per user: a superuser and a tenant admin never see each other’s', async () => {
    for (let i = 0; i < 3; i++) {
      const all = await names(admin);
      const mine = await names(acme);
      expect(all).toEqual(expect.arrayContaining(['admin', 'acme_admin', 'acme_ops', 'globex_admin']));
      expect(mine).toEqual(['acme_admin', 'acme_ops']);
    }
  });

  it('follows the session time zone', async () => {
    await shownTwice(admin);
    await admin.query("SET timezone = 'Asia/Tokyo'");
    try {
      const rows = await shownTwice(admin);
      expect(String(rows[0]!.created_at)).toMatch(/\+09$/);
    } finally {
      await admin.query("SET timezone = 'UTC'");
    }
    expect(String((await admin.query({ text: 'SHOW USERS', types: asText })).rows[0]!.created_at)).toMatch(/\+00$/);
  });

  it('shows a transaction its own uncommitted users, and no one else', async () => {
    await shownTwice(admin);
    await shownTwice(acme);
    const tx = await client(server.port);
    try {
      await tx.query('BEGIN');
      await tx.query("CREATE USER in_flight TENANT acme");
      expect(await names(tx)).toContain('in_flight');
      expect(await names(tx)).toContain('in_flight');
      expect(await names(admin)).not.toContain('in_flight');
      expect(await names(acme)).not.toContain('in_flight');
      await tx.query('ROLLBACK');
      expect(await names(tx)).not.toContain('in_flight');
    } finally {
      await tx.end();
    }
  });

  it('narrows at once when the viewer loses a role', async () => {
    const ops = await client(server.port, 'acme_ops', 'pw');
    try {
      expect(await names(ops)).toEqual(['acme_admin', 'acme_ops']);
      expect(await names(ops)).toEqual(['acme_admin', 'acme_ops']);
      await admin.query('ALTER USER acme_ops ROLE readonly');
      expect(await names(ops)).toEqual(['acme_ops']);
    } finally {
      await admin.query('ALTER USER acme_ops ROLE admin');
      await ops.end();
    }
  });

  it('streams a list too long to keep, the same each time', async () => {
    const creates = Array.from({ length: 1_050 }, (_, i) => `CREATE USER bulk_${String(i).padStart(4, '0')};`).join('\n');
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q', '-1'], { input: creates });
    expect(r.stderr).toBe('');
    const first = await names(admin);
    const second = await names(admin);
    expect(first.filter((n) => n.startsWith('bulk_'))).toHaveLength(1_050);
    expect(second).toEqual(first);
    await admin.query('DROP USER bulk_0000');
    expect(await names(admin)).toHaveLength(first.length - 1);
  });
});
