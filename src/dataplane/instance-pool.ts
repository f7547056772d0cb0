import { memoryTemplate, type InstanceSource } from './embedded.js';
import { adminOver, splitFrames } from './frames.js';
import { PgliteHost } from './pglite-host.js';
import { LOCKDOWN_SQL } from './provision/index.js';
import type { AdminSql } from './types.js';

/**
 * PGlite instances reused from one golden file to the next, each put back as it was when
 * opened from the template, so that a file does not pay an instance start (about 0.5 s of
 * CPU with small shared buffers, several seconds with PGlite's defaults: bench/README.md).
 *
 * When the plane of a file is done with an instance, `release` resets it as PostgreSQL's
 * superuser (PGlite's session is one): the session's state (DISCARD ALL), then everything
 * the file made — every role it made, with what those roles own and were granted (DROP
 * OWNED BY), and every schema but PostgreSQL's own and `public` (portcullis's among them) —
 * and the statistics counters. Then it compares a fingerprint of the cluster's catalogs
 * (how many objects of each kind the file left, and initdb's objects' access control lists) with the
 * fingerprint of a fresh instance: an instance that differs in anything is closed, not
 * reused, and the next file gets a fresh one. What no reset gives back: OIDs and
 * transaction ids go on counting, and the temporary schemas made by a temporary table stay
 * (empty).
 *
 * A fresh instance gets the lock-down installSchema gives every database (LOCKDOWN_SQL)
 * before it is handed out: PUBLIC's rights on languages and pg_catalog functions are
 * cluster state that the reset does not give back, and installSchema takes them again
 * anyway before any client SQL runs.
 */
export interface PoolFigures {
  /** Instances opened from the template, and the milliseconds it took them all. */
  opened: number;
  openMs: number;
  /** Instances handed out again after a reset, and the milliseconds resets took. */
  reused: number;
  resetMs: number;
  /** Instances closed because the reset did not bring them back to a fresh one's state. */
  discarded: number;
}

const RESET_SQL = `DO $reset$
DECLARE r record;
BEGIN
  FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE oid >= 16384 LOOP
    EXECUTE pg_catalog.format('DROP OWNED BY %I CASCADE', r.rolname);
  END LOOP;
  FOR r IN SELECT nspname FROM pg_catalog.pg_namespace WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_' LOOP
    EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE oid >= 16384 LOOP
    EXECUTE pg_catalog.format('DROP ROLE %I', r.rolname);
  END LOOP;
END
$reset$;
SELECT pg_catalog.pg_stat_reset();`;

/**
 * Every access control list of the objects initdb made (objects made later are counted
 * apart): the lock-down changes some, nothing a file does may change any.
 */
const ACLS = `SELECT 'acl:' || pg_catalog.md5(pg_catalog.string_agg(a, ',' ORDER BY a)) FROM (
  SELECT 'n' || oid || ':' || coalesce(nspacl::text, '') FROM pg_catalog.pg_namespace WHERE oid < 16384
  UNION ALL SELECT 'l' || oid || ':' || coalesce(lanacl::text, '') FROM pg_catalog.pg_language WHERE oid < 16384
  UNION ALL SELECT 'p' || oid || ':' || proacl::text FROM pg_catalog.pg_proc WHERE proacl IS NOT NULL AND oid < 16384
  UNION ALL SELECT 'c' || oid || ':' || relacl::text FROM pg_catalog.pg_class WHERE relacl IS NOT NULL AND oid < 16384
  UNION ALL SELECT 't' || oid || ':' || typacl::text FROM pg_catalog.pg_type WHERE typacl IS NOT NULL AND oid < 16384
  UNION ALL SELECT 'd' || oid || ':' || coalesce(datacl::text, '') FROM pg_catalog.pg_database
) s(a)`;

/**
 * Catalogs without an oid whose rows all follow from rows of a catalog that is counted
 * (a column from its relation, a dependency or a comment from its object, ...): counting
 * them would only cost time (pg_attribute and pg_description have thousands of rows).
 */
const DERIVED = ['pg_attribute', 'pg_depend', 'pg_shdepend', 'pg_description', 'pg_statistic', 'pg_statistic_ext_data', 'pg_largeobject', 'pg_init_privs', 'pg_index', 'pg_inherits', 'pg_aggregate', 'pg_sequence', 'pg_partitioned_table', 'pg_foreign_table', 'pg_range', 'pg_ts_config_map'];

export class InstancePool implements InstanceSource {
  private readonly idle: PgliteHost[] = [];
  private baseline: Promise<string> | null = null;
  private fingerprintSql: Promise<string> | null = null;
  private closed = false;
  readonly figures: PoolFigures = { opened: 0, openMs: 0, reused: 0, resetMs: 0, discarded: 0 };

  constructor(
    private readonly opts: {
      /** PostgreSQL settings of every instance (EmbeddedPlaneOptions.settings). */
      settings: readonly string[];
      /** Where the template tarball is cached (memoryTemplate). */
      cacheDir?: string;
      /** At most this many idle instances are kept (default 8). */
      maxIdle?: number;
    },
  ) {}

  async open(): Promise<PgliteHost> {
    if (this.closed) throw new Error('the instance pool is closed');
    const reused = this.idle.pop();
    if (reused) {
      this.figures.reused++;
      return reused;
    }
    const started = performance.now();
    const { tar } = await memoryTemplate(this.opts.cacheDir);
    const pg = await PgliteHost.open({ tar }, this.opts.settings);
    try {
      const sql = adminOn(pg);
      await sql.exec(LOCKDOWN_SQL);
      const own = this.fingerprint(sql);
      this.baseline ??= own;
      await own;
    } catch (err) {
      await pg.terminate();
      throw err;
    }
    this.figures.opened++;
    this.figures.openMs += performance.now() - started;
    return pg;
  }

  async release(pg: PgliteHost): Promise<void> {
    if (pg.closed) return;
    if (this.closed || this.idle.length >= (this.opts.maxIdle ?? 8)) {
      await pg.close().catch(() => pg.terminate());
      return;
    }
    const started = performance.now();
    let clean = false;
    try {
      const sql = adminOn(pg);
      // Outside a transaction block ROLLBACK only warns (cheaper than asking first).
      await sql.exec('ROLLBACK');
      await sql.exec('DISCARD ALL');
      await sql.exec(RESET_SQL);
      clean = (await this.fingerprint(sql)) === (await this.baseline);
    } catch {
      clean = false;
    }
    this.figures.resetMs += performance.now() - started;
    if (clean && !this.closed) {
      this.idle.push(pg);
      return;
    }
    this.figures.discarded++;
    await pg.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.idle.splice(0);
    await Promise.all(all.map((pg) => pg.close().catch(() => pg.terminate())));
  }

  /**
   * The state a reset must bring an instance back to: how many objects of each kind were
   * made after initdb (OIDs from 16384, FirstNormalObjectId: an index range on each
   * catalog), the rows of the small catalogs without OIDs, and initdb's objects' ACLs.
   */
  private async fingerprint(sql: AdminSql): Promise<string> {
    this.fingerprintSql ??= (async () => {
      const tables = await sql.query(
        `SELECT c.relname::text AS name, EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'oid' AND a.attnum > 0)::text AS has_oid
           FROM pg_catalog.pg_class c
          WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relkind = 'r' AND c.relname <> ALL ($1::text[]) ORDER BY 1`,
        [`{${DERIVED.join(',')}}`],
      );
      const counts = tables.map((t) => {
        // Temporary schemas stay once made (empty after DISCARD ALL): not counted.
        const where = t.name === 'pg_namespace' ? ` WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'` : t.has_oid === 'true' ? ' WHERE oid >= 16384' : '';
        return `SELECT '${t.name}=' || count(*) FROM pg_catalog.${t.name}${where}`;
      });
      return `SELECT pg_catalog.string_agg(x, ',' ORDER BY x) AS f FROM (${[...counts, ACLS].join('\nUNION ALL ')}) s(x)`;
    })();
    const [row] = await sql.query(await this.fingerprintSql);
    return row!.f!;
  }
}

/** Portcullis's own SQL straight on an instance that no plane holds. */
function adminOn(pg: PgliteHost): AdminSql {
  return adminOver(async (frames) => splitFrames(await pg.exec(frames)).frames);
}
