import type { CatalogReader } from '../catalog/catalog.js';
import type { Mutation, RlsPolicy, User } from '../catalog/model.js';
import type { AuthValues } from '../engine/auth-vars.js';
import { effectiveOf } from '../engine/effective.js';
import { PgError } from '../errors/pg-error.js';
import type { TurnContext } from './forwarder.js';
import { planeDbKey } from './names.js';
import {
  adoptNewObjects,
  applyIdentity,
  ensureProfileRole,
  installedPolicySql,
  installSchema,
  profileCovers,
  profileFor,
  profileRoleName,
  syncDatabase,
  type Profile,
} from './provision/index.js';
import type { AdminSql, DataPlane, Lease, PlaneDatabase } from './types.js';
import { sqlStateOf } from './provision/lock.js';
import { quoteIdent } from './provision/quote.js';
import { tablesOf } from './provision/objects.js';
import { syncTable } from './provision/policies.js';
import { portcullisObject } from './provision/schema.js';

/**
 * The gate between the catalog and the data plane: what a session's turn carries (its
 * profile role and `$auth` values), what follows DDL, and keeping each database's policies
 * and roles in line with the catalog. The session gives it who acts; the provisioner
 * (provision/) writes the SQL; the forwarder (forwarder.ts) calls it at each turn.
 *
 * In line with the catalog, failing closed: a commit that changes a database's policies
 * marks it stale and syncs it before the commit is acknowledged; a database whose sync
 * failed stays stale, and no session's SQL runs there until a sync succeeds (each turn
 * tries again first).
 */

/** What the gate needs of a session: who acts now, and its `$auth` values. */
export interface GateSession {
  actor(view: CatalogReader, now: number): User;
  authValues(view: CatalogReader, now: number): AuthValues;
}

interface DatabaseState {
  db: PlaneDatabase;
  dbKey: string;
  /** installSchema done (once per process per database). */
  installed: Promise<void> | null;
  /** Catalog changes to its policies not yet installed. */
  stale: boolean;
  /** Profile roles known to exist (created or seen this process). */
  roles: Set<string>;
}

interface Held {
  dbKey: string;
  role: string;
  profile: Profile;
  /** What the connection it last ran on carries: role and values. */
  applied: string;
}

export interface GateOptions {
  catalog: () => CatalogReader;
  clock: () => number;
  log?: (line: string) => void;
}

export class DataPlaneGate {
  private readonly databases = new Map<string, DatabaseState>();
  private readonly held = new Map<object, Held>();
  /** The catalog's databases as of the last commit seen: a dropped one is known by its id. */
  private known: Map<number, PlaneDatabase>;

  constructor(
    readonly plane: DataPlane,
    private readonly opts: GateOptions,
  ) {
    this.known = knownDatabases(opts.catalog(), plane.namespace);
  }

  private state(db: PlaneDatabase): DatabaseState {
    const dbKey = planeDbKey(db);
    let s = this.databases.get(dbKey);
    if (!s) {
      // A database first seen this process may hold policies from before a restart or a
      // crash: it is synced with the catalog before any session's SQL runs there.
      s = { db, dbKey, installed: null, stale: true, roles: new Set() };
      this.databases.set(dbKey, s);
    }
    return s;
  }

  private policiesOf(databaseId: number): RlsPolicy[] {
    const out: RlsPolicy[] = [];
    for (const p of this.opts.catalog().rlsPolicies()) if (p.databaseId === databaseId) out.push(p);
    return out;
  }

  /** The profiles sessions hold in a database: their roles must survive a sync. */
  private profilesHeld(dbKey: string): Profile[] {
    const out: Profile[] = [];
    for (const h of this.held.values()) if (h.dbKey === dbKey) out.push(h.profile);
    return out;
  }

  private async install(s: DatabaseState, sql: AdminSql): Promise<void> {
    s.installed ??= (async () => {
      const report = await installSchema(sql, s.dbKey);
      if (report.exposed.length > 0) {
        throw new PgError('insufficient_privilege', `the data plane's database for "${s.db.databaseName}" is not locked down`, {
          detail: `PUBLIC can still use: ${report.exposed.join(', ')}. A session's identity there could be left from inside PostgreSQL.`,
          hint: 'Run the lock-down of docs/data-plane.md once as a PostgreSQL superuser (in template1), or connect portcullis as a superuser.',
        });
      }
    })().catch((err) => {
      s.installed = null;
      throw err;
    });
    await s.installed;
  }

  private async sync(s: DatabaseState, sql: AdminSql): Promise<void> {
    await this.install(s, sql);
    const result = await syncDatabase(sql, { dbKey: s.dbKey, policies: this.policiesOf(s.db.databaseId), profiles: this.profilesHeld(s.dbKey) });
    for (const r of result.rolesCreated) s.roles.add(r);
    for (const r of result.rolesDropped) s.roles.delete(r);
    for (const i of result.invalid) this.opts.log?.(`data plane: policy "${i.policy}" on "${i.table}" in ${s.dbKey} is installed as false: ${i.reason}`);
    s.stale = false;
  }

  /**
   * The identity hook of a session's turns: syncs a stale database, then, when the
   * connection does not carry this session's current profile role and values, applies them.
   * The profile is computed at every turn, so a revoked or expired grant takes effect at
   * the session's next turn, and a dropped principal's next statement ends its session.
   */
  async turn(session: GateSession & object, db: PlaneDatabase, t: TurnContext): Promise<void> {
    const s = this.state(db);
    const sql = t.lease.admin;
    const view = this.opts.catalog();
    const now = this.opts.clock();
    const user = session.actor(view, now);
    const profile = profileFor(effectiveOf(user, view, now), db.databaseId);
    if (!profile) {
      throw new PgError('insufficient_privilege', `permission denied for database "${db.databaseName}"`, {
        detail: `${user.name} has no privilege on database "${db.databaseName}" now.`,
      });
    }
    const role = profileRoleName(s.dbKey, profile);
    const auth = session.authValues(view, now);
    const applied = `${role}\n${JSON.stringify(auth)}`;
    const before = this.held.get(session);
    const held = { dbKey: s.dbKey, role, profile, applied };
    // A connection that does not carry this identity may still be SET ROLE to a profile
    // role a sync has dropped since (roles of profiles no session holds go; a pooled
    // connection idles with the last session's role): every statement on it, provisioning's
    // first, would fail with "invalid role OID". It is portcullis's again before anything
    // runs on it; the identity below is applied in full.
    const carries = (!t.reset && !t.changed && before?.applied === applied) || (t.lease.identity === applied && !t.changed);
    if (!carries) {
      if (t.lease.identity !== undefined) t.lease.identity = null;
      await sql.exec('RESET ROLE');
    }
    // Provisioning on the connection may have to leave the role and take it back: the pool's
    // remembered identity is not trusted after it.
    if (s.stale && t.lease.identity !== undefined) t.lease.identity = null;
    if (s.stale) await this.sync(s, sql);
    else await this.install(s, sql);
    if (!s.roles.has(role)) {
      await ensureProfileRole(sql, s.dbKey, profile);
      s.roles.add(role);
    }
    if (!t.reset && !t.changed && before?.applied === applied) return;
    // The pool's fast path: the connection carries this very role and these values already
    // (it served a session of the same identity last, and nothing session-scoped stays on a
    // pooled connection: see pool.ts).
    if (t.lease.identity === applied && !t.changed) {
      this.held.set(session, held);
      return;
    }
    // Until it is applied, nothing says the connection carries this session's identity.
    this.held.set(session, { ...held, applied: '' });
    if (t.lease.identity !== undefined) t.lease.identity = null;
    await applyIdentity(sql, role, auth, { reset: t.reset || !before ? 'another-session' : 'same-session' });
    this.held.set(session, held);
    if (t.lease.identity !== undefined) t.lease.identity = applied;
  }

  /**
   * Before each statement inside a data-plane transaction block. The block keeps the role
   * and values its first turn applied: applying others inside it would be undone by its
   * ROLLBACK (or a ROLLBACK TO SAVEPOINT) while the gate believed them in place. So they
   * are only checked: privileges added since wait for the block's end; anything taken away
   * (a privilege, the database, the principal) or a `$auth` value changed ends the session,
   * and with it the block (rolled back), as a dropped principal's next statement does.
   */
  recheck(session: GateSession & object, db: PlaneDatabase): void {
    const held = this.held.get(session);
    if (!held) return;
    const view = this.opts.catalog();
    const now = this.opts.clock();
    const user = session.actor(view, now);
    const profile = profileFor(effectiveOf(user, view, now), db.databaseId);
    if (profile && held.applied === `${held.role}\n${JSON.stringify(session.authValues(view, now))}` && profileCovers(profile, held.profile)) return;
    throw new PgError('insufficient_privilege', `the privileges of "${user.name}" on database "${db.databaseName}" changed inside this transaction block`, {
      severity: 'FATAL',
      detail: 'A privilege was revoked or expired, or a $auth value changed, while the block was open: the session ends and its transaction is rolled back.',
      hint: 'Connect again: a new session runs with the privileges of now.',
    });
  }

  /**
   * Step 1 of the commit protocol (docs/data-plane.md), inside the session's still-open
   * block on its lease: the policies the catalog will hold once `view` commits go on now,
   * so that they commit with the block's tables or not at all; then the outcome row
   * (portcullis.commits) that says, after a crash, whether the block committed.
   */
  async prepareBlock(db: PlaneDatabase, lease: Lease, view: CatalogReader, txid: string): Promise<void> {
    const s = this.state(db);
    const sql = lease.admin;
    await this.install(s, sql);
    const policies = [...view.rlsPolicies()].filter((p) => p.databaseId === db.databaseId);
    // A savepoint around all of it: a failure is rolled back to here (the session's role
    // included, SET ROLE being transactional) and leaves the block as it was, which the
    // session then rolls back.
    let root: unknown = null;
    await sql.exec('SAVEPOINT pcu_prepare');
    try {
      // As portcullis, without the provisioning lock: a session-level lock waited for
      // while the block holds its own locks is how two blocks deadlock; the tables touched
      // here are locked by the block itself, which serialises any other sync of them.
      await asPortcullis(sql, async () => {
        try {
          // Only the tables whose policies the block changes: the fewer locks the block
          // takes here, the fewer it can deadlock on with another block doing the same.
          // Roles (a grant's new profile) are made at their first turn, and the sync after
          // the decision brings the rest in line.
          const changed = changedCollections(policies, this.policiesOf(db.databaseId));
          if (changed.size > 0) {
            for (const t of await tablesOf(sql)) {
              if (!changed.has(t.name) || !t.managed || (t.kind !== 'r' && t.kind !== 'p')) continue;
              const r = await syncTable(sql, t, policies.filter((p) => p.collection === t.name));
              for (const i of r.invalid) this.opts.log?.(`data plane: policy "${i.policy}" on "${t.name}" in ${s.dbKey} is installed as false: ${i.reason}`);
            }
          }
          await sql.query(`INSERT INTO ${portcullisObject('commits')} (txid) VALUES ($1)`, [txid]);
        } catch (err) {
          root = err;
          throw err;
        }
      });
      await sql.exec('RELEASE SAVEPOINT pcu_prepare');
    } catch (err) {
      // Back to the savepoint: the session's role too (SET ROLE is transactional).
      await sql.exec('ROLLBACK TO SAVEPOINT pcu_prepare');
      const cause = root ?? err;
      if (sqlStateOf(cause)?.startsWith('40')) {
        // A deadlock or a serialization failure against another transaction: nothing is
        // lost by trying again.
        throw new PgError('serialization_failure', 'could not serialize access: the data plane could not take this transaction\'s policies now', {
          detail: (cause as Error)?.message ?? String(cause),
          hint: 'Retry the transaction.',
        });
      }
      throw cause;
    }
    // Not marked stale: a turn of another session between this block's COMMIT and the
    // catalog's decision would sync the database to the catalog without this block's
    // policies, and take them off its new tables until the decision's own sync.
  }

  /** Whether the block that inserted `txid` into portcullis.commits committed (after its COMMIT, or at recovery). */
  async outcome(sql: AdminSql, txid: string): Promise<boolean> {
    try {
      // As portcullis (a lease's connection runs as the session's profile role between statements).
      const rows = await asPortcullis(sql, () => sql.query(`SELECT 1 AS one FROM ${portcullisObject('commits')} WHERE txid = $1`, [txid]));
      return rows.length > 0;
    } catch (err) {
      // No table: no block ever committed an outcome there.
      if (sqlStateOf(err) === '42P01' || sqlStateOf(err) === '3F000') return false;
      throw err;
    }
  }

  /** After a session's DDL: what its role created goes to the owner role, waiting policies go on. */
  async afterDdl(db: PlaneDatabase, lease: Lease): Promise<void> {
    const s = this.state(db);
    if (lease.identity !== undefined) lease.identity = null;
    await adoptNewObjects(lease.admin, s.dbKey, this.policiesOf(db.databaseId));
  }

  /** The session ended: its profile no longer keeps a role alive. */
  forget(session: object): void {
    this.held.delete(session);
  }

  /**
   * After a commit: databases whose policies changed are synced now (the commit is
   * acknowledged after), dropped databases dropped. A failed sync leaves the database
   * stale: its next turn syncs first, or refuses.
   */
  async committed(mutations: readonly Mutation[]): Promise<void> {
    const touched = new Set<number>();
    for (const m of mutations) {
      if (m.op === 'insert' || m.op === 'update') {
        if (m.table === 'rlsPolicies') touched.add(m.row.databaseId);
      } else if (m.op === 'delete' && m.table === 'rlsPolicies') {
        // The deleted row is gone from the catalog: every open database re-checks.
        for (const s of this.databases.values()) touched.add(s.db.databaseId);
      } else if (m.op === 'delete' && m.table === 'databases') {
        const db = this.known.get(m.id);
        if (db) {
          this.databases.delete(planeDbKey(db));
          await this.plane.dropDatabase(db).catch((err) => this.opts.log?.(`data plane: could not drop ${planeDbKey(db)}: ${(err as Error).message}`));
        }
      }
    }
    this.known = knownDatabases(this.opts.catalog(), this.plane.namespace);
    for (const s of this.databases.values()) {
      if (!touched.has(s.db.databaseId)) continue;
      s.stale = true;
      try {
        await this.plane.withAdmin(s.db, (sql) => this.sync(s, sql));
      } catch (err) {
        this.opts.log?.(`data plane: ${s.dbKey} not yet in line with the catalog (its next turn tries again): ${(err as Error).message}`);
      }
    }
  }

  /** EXPLAIN RLS: the policy as PostgreSQL holds it, or null while its table does not exist. */
  async installed(db: PlaneDatabase, policy: RlsPolicy): Promise<string | null> {
    const s = this.state(db);
    return this.plane.withAdmin(db, async (sql) => {
      if (s.stale) await this.sync(s, sql);
      return installedPolicySql(sql, policy);
    });
  }
}

/**
 * Runs `fn` as portcullis's own role on a lease's connection (which runs as the session's
 * profile role between statements), then sets the session's role again. If `fn` fails and
 * the role cannot be set again, the caller rolls back (to a savepoint, in a block) or
 * gives the connection up: either way it carries no client SQL as portcullis.
 */
async function asPortcullis<T>(sql: AdminSql, fn: () => Promise<T>): Promise<T> {
  const [who] = await sql.query('SELECT current_user::text AS cur, session_user::text AS ses');
  const restore = who!.cur !== who!.ses ? who!.cur! : null;
  if (restore) await sql.exec('RESET ROLE');
  let failed = false;
  try {
    return await fn();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (restore) await sql.exec(`SET ROLE ${quoteIdent(restore)}`).catch((err: unknown) => {
      if (!failed) throw err;
    });
  }
}

/** Tables whose catalog policies differ between `staged` and `committed` (added, dropped or changed). */
function changedCollections(staged: RlsPolicy[], committed: RlsPolicy[]): Set<string> {
  const key = (p: RlsPolicy) => JSON.stringify([p.id, p.collection, p.name, p.kind, p.restrictive, p.predicate]);
  const before = new Map(committed.map((p) => [key(p), p.collection]));
  const after = new Map(staged.map((p) => [key(p), p.collection]));
  const out = new Set<string>();
  for (const [k, c] of after) if (!before.has(k)) out.add(c);
  for (const [k, c] of before) if (!after.has(k)) out.add(c);
  return out;
}

/** A portcullis database as the data plane names it (by ids, in the plane's namespace; names for messages only). */
export function planeDatabaseOf(view: CatalogReader, databaseId: number, namespace?: string): PlaneDatabase | null {
  const db = view.databaseById(databaseId);
  if (!db) return null;
  return {
    tenantId: db.tenantId,
    databaseId: db.id,
    tenantName: view.tenantById(db.tenantId)?.name ?? String(db.tenantId),
    databaseName: db.name,
    ...(namespace === undefined ? {} : { namespace }),
  };
}

function knownDatabases(view: CatalogReader, namespace: string | undefined): Map<number, PlaneDatabase> {
  const out = new Map<number, PlaneDatabase>();
  for (const db of view.databases()) out.set(db.id, planeDatabaseOf(view, db.id, namespace)!);
  return out;
}
