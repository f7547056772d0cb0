import { afterAll, describe, expect, it } from 'vitest';
import { DETERMINISTIC_PLANE_SETTINGS } from '../../src/dataplane/embedded.js';
import { adminOver, splitFrames } from '../../src/dataplane/frames.js';
import { InstancePool } from '../../src/dataplane/instance-pool.js';
import type { PgliteHost } from '../../src/dataplane/pglite-host.js';
import type { AdminSql } from '../../src/dataplane/types.js';

/**
 * The golden runner's pool of PGlite instances: an instance a file used comes back as a
 * fresh one would be (nothing the file made is left, as PostgreSQL's own catalogs show),
 * and one the reset cannot bring back is closed and replaced, never handed out again.
 */
const sqlOn = (pg: PgliteHost): AdminSql => adminOver(async (frames) => splitFrames(await pg.exec(frames)).frames);

/** Everything made after initdb that a file could leave: roles, schemas, relations, functions, types. */
async function madeSinceInitdb(sql: AdminSql): Promise<string[]> {
  const rows = await sql.query(`
    SELECT 'role ' || rolname AS what FROM pg_roles WHERE oid >= 16384
    UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'
    UNION ALL SELECT 'relation ' || relname FROM pg_class WHERE oid >= 16384
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE oid >= 16384
    UNION ALL SELECT 'type ' || typname FROM pg_type WHERE oid >= 16384
    ORDER BY 1`);
  return rows.map((r) => r.what!);
}

describe('the instance pool of golden files', () => {
  const pool = new InstancePool({ settings: DETERMINISTIC_PLANE_SETTINGS });
  afterAll(() => pool.close());

  it('gives back an instance as fresh as a new one: what a file made is gone, its session state too', async () => {
    const first = await pool.open();
    const sql = sqlOn(first);
    expect(await madeSinceInitdb(sql)).toEqual([]);
    // What a file's data plane makes: roles (portcullis's), schemas, tables, a sequence, a
    // view, rows; and session state (a setting, a temporary table, an open transaction).
    await sql.exec(`
      CREATE ROLE pcu_t1d2_owner NOLOGIN;
      CREATE ROLE pcu_t1d2_p_0123456789ab NOLOGIN;
      GRANT USAGE, CREATE ON SCHEMA public TO pcu_t1d2_owner;
      CREATE SCHEMA portcullis;
      CREATE TABLE portcullis.session_auth (pid int PRIMARY KEY);
      SET ROLE pcu_t1d2_owner;
      CREATE TABLE public.orders (id serial PRIMARY KEY, owner text);
      CREATE VIEW public.mine AS SELECT * FROM public.orders;
      INSERT INTO public.orders (owner) VALUES ('alice');
      RESET ROLE;
      GRANT SELECT ON public.orders TO pcu_t1d2_p_0123456789ab;
      SET search_path = portcullis;
      CREATE TEMPORARY TABLE scratch (x int);`);
    await sql.exec('BEGIN; INSERT INTO public.orders (owner) VALUES (\'bob\')');
    expect((await madeSinceInitdb(sql)).length).toBeGreaterThan(5);
    await pool.release(first);
    expect(pool.figures).toMatchObject({ opened: 1, reused: 0, discarded: 0 });

    const again = await pool.open();
    expect(again).toBe(first);
    expect(pool.figures).toMatchObject({ opened: 1, reused: 1, discarded: 0 });
    const sql2 = sqlOn(again);
    expect(await madeSinceInitdb(sql2)).toEqual([]);
    expect(await sql2.query("SELECT current_setting('search_path') AS p, current_user::text AS u, pg_catalog.to_regclass('scratch')::text AS t")).toEqual([
      // PGlite starts every session with search_path=public.
      { p: 'public', u: 'postgres', t: null },
    ]);
    await pool.release(again);
  });

  it('closes an instance the reset cannot bring back, and opens a fresh one instead', async () => {
    const pg = await pool.open();
    const sql = sqlOn(pg);
    // Owned by PGlite's superuser in public: no role of the file's owns it, so the reset
    // leaves it, and the fingerprint sees it.
    await sql.exec('CREATE TABLE public.stray (x int); INSERT INTO public.stray VALUES (1)');
    const before = { ...pool.figures };
    await pool.release(pg);
    expect(pool.figures.discarded).toBe(before.discarded + 1);
    expect(pg.closed).toBe(true);
    const next = await pool.open();
    expect(next).not.toBe(pg);
    expect(pool.figures.opened).toBe(before.opened + 1);
    expect(await madeSinceInitdb(sqlOn(next))).toEqual([]);
    await pool.release(next);
  }, 60_000);
});
