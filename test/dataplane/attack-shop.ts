import pg from 'pg';
import { expect } from 'vitest';
import type { RunningServer, ServerOptions } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';
import type { PlaneUnderTest } from './planes-under-test.js';

/**
 * The set-up every test/dataplane/attacks-*.test.ts starts from (issue: "the data plane
 * under attack"): database `shop`, table `orders` with the catalog policy `own`
 * (`owner = $auth.username`, FOR ALL), one row each for alice, bob and carol, and:
 *
 *   alice  readwrite, READ and WRITE on shop        (the attacker, unless a test says otherwise)
 *   bob    readwrite, READ and WRITE on shop        (another principal on the same rows)
 *   dev    readwrite, READ, WRITE and SCHEMA on shop (may create tables, views, ...)
 *
 * and helpers that say what a user sees: rows, or the SQLSTATE.
 */

export const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw', dev: 'dev-pw', admin: ADMIN_PASSWORD };

/** What one statement gave: its rows, or the error's SQLSTATE and message. */
export type Outcome = { ok: true; rows: Record<string, unknown>[]; command: string } | { ok: false; code: string; message: string };

export async function attempt(c: pg.Client, sql: string, values?: unknown[]): Promise<Outcome> {
  try {
    const r = await c.query(sql, values);
    // A message of several statements gives one result per statement: the last one's rows.
    const last = Array.isArray(r) ? (r.at(-1) as pg.QueryResult) : r;
    return { ok: true, rows: last.rows, command: last.command };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, code: e.code ?? 'no SQLSTATE', message: e.message };
  }
}

/** The SQLSTATE an attempt failed with ('ok' when it did not fail). */
export async function stateOf(c: pg.Client, sql: string): Promise<string> {
  const r = await attempt(c, sql);
  return r.ok ? 'ok' : r.code;
}

export interface Shop {
  server: RunningServer;
  plane: PlaneUnderTest;
  /** A node-postgres session; FATAL errors end it without an unhandled 'error' event. */
  connect(user: string, db?: string, password?: string): Promise<pg.Client>;
  /** The owners of the orders `user` sees, sorted, on a session of its own. */
  visibleOwners(user: string, c?: pg.Client): Promise<string[]>;
  /** An admin-language or SQL statement as the bootstrap superuser; fails the test on error. */
  admin(sql: string, db?: string): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

export interface ShopOptions {
  /** More admin-language statements after the standard set-up (psql, ON_ERROR_STOP). */
  setup?: string[];
  server?: Partial<ServerOptions>;
}

export async function openShop(plane: PlaneUnderTest, opts: ShopOptions = {}): Promise<Shop> {
  const server = await startTestServer({ ...(await plane.options()), ...opts.server });
  const clients = new Set<pg.Client>();
  const connect = async (user: string, db = 'shop', password = PASSWORDS[user] ?? '') => {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password, database: db });
    c.on('error', () => {});
    await c.connect();
    clients.add(c);
    c.on('end', () => clients.delete(c));
    return c;
  };
  const setup = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    input: [
      'CREATE DATABASE shop;',
      ...['alice', 'bob', 'dev'].map((u) => `CREATE USER ${u} WITH PASSWORD '${PASSWORDS[u]}' ROLE readwrite;`),
      'GRANT READ, WRITE ON DATABASE shop TO alice, bob;',
      'GRANT READ, WRITE, SCHEMA ON DATABASE shop TO dev;',
      ...(opts.setup ?? []),
    ].join('\n'),
  });
  expect(setup.stderr).toBe('');
  const tables = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    db: 'shop',
    input: [
      'CREATE TABLE orders (id int PRIMARY KEY, owner text NOT NULL, amount numeric);',
      "INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'carol', 30);",
      'CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username);',
    ].join('\n'),
  });
  expect(tables.stderr).toBe('');
  const admin = await connect('admin');
  return {
    server,
    plane,
    connect,
    async visibleOwners(user, c) {
      const own = c ?? (await connect(user));
      try {
        const r = await own.query('SELECT owner FROM orders ORDER BY owner');
        return r.rows.map((x: { owner: string }) => x.owner);
      } finally {
        if (!c) await own.end();
      }
    },
    async admin(sql, db = 'shop') {
      if (db === 'shop') return admin.query(sql);
      const c = await connect('admin', db);
      try {
        return await c.query(sql);
      } finally {
        await c.end();
      }
    },
    async close() {
      for (const c of clients) await c.end().catch(() => undefined);
      await server.close();
      await plane.stop();
    },
  };
}
