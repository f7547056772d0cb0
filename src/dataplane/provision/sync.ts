/**
 * syncDatabase: brings a database's profile roles and policies in line with the catalog
 * (at every commit that touches grants or policies, and at start). Idempotent: a second
 * run with the same desired state changes nothing.
 */
import type { RlsPolicy } from '../../catalog/model.js';
import type { AdminSql } from '../types.js';
import { adoptOwned } from './adopt.js';
import { ensureProfileRole } from './grants.js';
import { withProvisionLock } from './lock.js';
import { ownerRoleName } from './names.js';
import { profileRoles, tablesOf } from './objects.js';
import { syncTable } from './policies.js';
import { profileRoleName, type Profile } from './profile.js';
import { quoteIdent } from './quote.js';

export interface DesiredState {
  dbKey: string;
  /** Every catalog policy of this database. */
  policies: RlsPolicy[];
  /**
   * The profiles whose roles must exist: those of the principals that may reach the
   * database now (and of sessions that still hold a lease on a role). Roles of other
   * profiles are dropped.
   */
  profiles: Profile[];
  /** Login mode: the password of each profile role, by role name (absent: NOLOGIN). */
  passwords?: Record<string, string>;
}

export interface SyncResult {
  rolesCreated: string[];
  rolesDropped: string[];
  adopted: string[];
  policiesInstalled: string[];
  policiesDropped: string[];
  /** Catalog policies whose table does not exist (installed by adoptNewObjects when it does). */
  pending: RlsPolicy[];
  /** Catalog policies installed as `false`: their predicate does not type against the table, or the relation is not a table. */
  invalid: { table: string; policy: string; reason: string }[];
}

export async function syncDatabase(sql: AdminSql, desired: DesiredState): Promise<SyncResult> {
  const { dbKey } = desired;
  return withProvisionLock(sql, async () => {
    const result: SyncResult = { rolesCreated: [], rolesDropped: [], adopted: [], policiesInstalled: [], policiesDropped: [], pending: [], invalid: [] };
    // Ownership first: a table a profile role still owns is outside the owner role's reach.
    result.adopted = (await adoptOwned(sql, dbKey)).adopted;

    const existing = new Set((await profileRoles(sql, dbKey)).map((r) => r.name));
    const wanted = new Map<string, Profile>();
    for (const p of desired.profiles) wanted.set(profileRoleName(dbKey, p), p);
    for (const [name, p] of wanted) {
      await ensureProfileRole(sql, dbKey, p, { password: desired.passwords?.[name] });
      if (!existing.has(name)) result.rolesCreated.push(name);
    }
    for (const name of existing) {
      if (wanted.has(name)) continue;
      const r = quoteIdent(name);
      // What it owns goes to the owner role (adoptOwned did that already, unless created
      // since); DROP OWNED then removes its privileges in this database, the only one it has any in.
      await sql.exec(`REASSIGN OWNED BY ${r} TO ${quoteIdent(ownerRoleName(dbKey))}; DROP OWNED BY ${r}; DROP ROLE ${r};`);
      result.rolesDropped.push(name);
    }

    const tables = await tablesOf(sql);
    const byName = new Map(tables.map((t) => [t.name, t]));
    const byTable = new Map<string, RlsPolicy[]>();
    for (const p of desired.policies) {
      const t = byName.get(p.collection);
      if (!t) result.pending.push(p);
      else if (t.kind !== 'r' && t.kind !== 'p') result.invalid.push({ table: p.collection, policy: p.name, reason: `"${p.collection}" is not a table` });
      else byTable.set(p.collection, [...(byTable.get(p.collection) ?? []), p]);
    }
    for (const t of tables) {
      if (t.kind !== 'r' && t.kind !== 'p') continue;
      const wantedHere = byTable.get(t.name) ?? [];
      if (!t.managed) {
        // Someone else's table (created outside portcullis): not portcullis's to change;
        // a catalog policy for it cannot be installed, and says so.
        for (const p of wantedHere) result.invalid.push({ table: t.name, policy: p.name, reason: `table "${t.name}" is owned by "${t.owner}", not by ${ownerRoleName(dbKey)}` });
        continue;
      }
      let r;
      try {
        r = await syncTable(sql, t, byTable.get(t.name) ?? []);
      } catch (err) {
        // A table portcullis cannot manage (someone else's, outside the owner role): the
        // others are still brought in line; this one is reported, policy by policy.
        const reason = `table "${t.name}" owned by "${t.owner}": ${(err as Error).message}`;
        for (const p of byTable.get(t.name) ?? [{ name: '*' }]) result.invalid.push({ table: t.name, policy: p.name, reason });
        continue;
      }
      result.policiesInstalled.push(...r.installed.map((n) => `${t.name}.${n}`));
      result.policiesDropped.push(...r.dropped.map((n) => `${t.name}.${n}`));
      result.invalid.push(...r.invalid.map((i) => ({ table: t.name, ...i })));
    }
    return result;
  });
}
