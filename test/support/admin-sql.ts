import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { AdminSql } from '../../src/dataplane/types.js';

/** A value as text, the way AdminSql promises rows (provisioning queries cast to text anyway). */
const text = (v: unknown): string | null => (v === null || v === undefined ? null : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** AdminSql over a PGlite instance: exec is the simple protocol, query the extended one. */
export function pgliteAdminSql(db: PGlite): AdminSql {
  return {
    async exec(sql) {
      await db.exec(sql);
    },
    async query(sql, params = []) {
      const r = await db.query<Record<string, unknown>>(sql, params);
      return r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, text(v)])));
    },
  };
}

/** Every type as its text form: AdminSql rows are text. */
const TEXT_TYPES = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/** AdminSql over a node-postgres client (simple protocol for exec: no parameters). */
export function pgAdminSql(client: pg.Client): AdminSql {
  return {
    async exec(sql) {
      await client.query(sql);
    },
    async query(sql, params = []) {
      const r = await client.query<Record<string, string | null>>({ text: sql, values: params, types: TEXT_TYPES });
      return r.rows;
    },
  };
}

export { TEXT_TYPES };
