/**
 * The two places provisioning runs, for test/dataplane/provision-*.test.ts:
 * - PGlite, in memory: portcullis is the (superuser) session itself; a principal is the
 *   same connection after identitySql (set-role mode);
 * - Debian's PostgreSQL: portcullis logs in as `gateway`, a role with CREATEDB and
 *   CREATEROLE and nothing more (no superuser), owning the database it created; a principal
 *   is a connection logged in as its profile role, its `$auth` values written by gateway
 *   for that backend's pid (login mode: the lock-down of PUBLIC needs a superuser).
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { applyIdentity, ensureProfileRole, storeAuthFor, type Profile } from '../../src/dataplane/provision/index.js';
import type { AdminSql } from '../../src/dataplane/types.js';
import type { AuthValues } from '../../src/engine/auth-vars.js';
import { pgAdminSql, pgliteAdminSql, TEXT_TYPES } from './admin-sql.js';
import { startPostgres, type PostgresServer } from './postgres.js';

export interface Principal {
  query(sql: string, params?: (string | null)[]): Promise<Record<string, string | null>[]>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export interface Plane {
  name: 'pglite' | 'postgres';
  mode: 'set-role' | 'login';
  dbKey: string;
  /** portcullis's own connection. */
  admin: AdminSql;
  /** A session of a principal with this profile and these values (on PGlite: valid until the next one). */
  as(profile: Profile, auth: AuthValues): Promise<Principal>;
  /** Another connection of portcullis's own role (for races); PGlite has only one. */
  secondAdmin?(): Promise<AdminSql & { close(): Promise<void> }>;
  /** On PostgreSQL: a gateway connection that took the profile role by SET ROLE (set-role mode without superuser). */
  setRoleSession?(profile: Profile, auth: AuthValues): Promise<Principal>;
  close(): Promise<void>;
}

export const DB_KEY = 't1_d1';
const PASSWORD = 'test-profile-password';

export const authOf = (over: Partial<AuthValues>): AuthValues => ({
  id: null,
  username: null,
  role: null,
  tenant_id: null,
  org_id: null,
  scopes: null,
  databases: null,
  roles: null,
  email: null,
  method: null,
  claims: {},
  ...over,
});

export async function pglitePlane(): Promise<Plane> {
  const db = new PGlite();
  await db.waitReady;
  const raw = pgliteAdminSql(db);
  // The embedded plane's admin SQL runs on the one connection, after whatever turn came
  // before: as portcullis, so the role a turn left is reset first.
  const admin: AdminSql = {
    exec: (sql) => raw.exec(`RESET ROLE; ${sql}`),
    query: async (sql, params) => {
      await raw.exec('RESET ROLE');
      return raw.query(sql, params);
    },
  };
  return {
    name: 'pglite',
    mode: 'set-role',
    dbKey: DB_KEY,
    admin,
    async as(profile, auth) {
      const role = await ensureProfileRole(admin, DB_KEY, profile);
      await applyIdentity(raw, role, auth);
      return { ...raw, close: async () => {} };
    },
    close: () => db.close(),
  };
}

export async function postgresPlane(): Promise<Plane & { server: PostgresServer }> {
  const server = await startPostgres();
  await server.query(`CREATE ROLE gateway LOGIN PASSWORD 'gateway' CREATEDB CREATEROLE`);
  const boot = new pg.Client(server.connection('gateway', 'gateway', 'postgres'));
  await boot.connect();
  await boot.query(`CREATE DATABASE pcu_${DB_KEY}`);
  await boot.end();
  const clients: pg.Client[] = [];
  const connect = async (user: string, password: string) => {
    const c = new pg.Client(server.connection(user, password, `pcu_${DB_KEY}`));
    await c.connect();
    clients.push(c);
    return c;
  };
  const principal = (c: pg.Client): Principal => ({
    ...pgAdminSql(c),
    async close() {
      await c.end();
    },
  });
  const adminClient = await connect('gateway', 'gateway');
  const admin = pgAdminSql(adminClient);
  return {
    name: 'postgres',
    mode: 'login',
    dbKey: DB_KEY,
    admin,
    server,
    async as(profile, auth) {
      const role = await ensureProfileRole(admin, DB_KEY, profile, { password: PASSWORD });
      const c = await connect(role, PASSWORD);
      const [r] = (await c.query({ text: 'SELECT pg_backend_pid() AS pid', types: TEXT_TYPES })).rows as { pid: string }[];
      await storeAuthFor(admin, Number(r!.pid), role, auth);
      return principal(c);
    },
    async secondAdmin() {
      const c = await connect('gateway', 'gateway');
      return { ...pgAdminSql(c), close: () => c.end() };
    },
    async setRoleSession(profile, auth) {
      const role = await ensureProfileRole(admin, DB_KEY, profile);
      const c = await connect('gateway', 'gateway');
      await applyIdentity(pgAdminSql(c), role, auth);
      return principal(c);
    },
    async close() {
      for (const c of clients) await c.end().catch(() => {});
      await server.stop();
    },
  };
}

/** The SQLSTATE a promise rejects with (undefined when it resolves). */
export async function sqlState(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === undefined) throw err;
    return code;
  }
}
