import { Engine } from '../engine/engine.js';
import { dataDirOptions } from '../engine/data-dir.js';
import { PostgresStore } from '../store/postgres-store.js';
import type { Keys } from '../store/cipher.js';
import type { SqlConnection } from './connection.js';
import { LocalConnection } from './local-connection.js';
import { PgConnection } from './pg-connection.js';

/**
 * The catalog a CLI tool works on: offline, a data directory opened in-process (taking the
 * same lock a server takes, so a running server refuses us and we refuse it); online, a
 * running server over pgwire (--url, else the PG* variables, else 127.0.0.1:6432); or a
 * catalog in PostgreSQL (--catalog), opened in-process as one more instance of it.
 */
export interface TargetOptions {
  data?: string;
  url?: string;
  /** A catalog in PostgreSQL (postgres://...): served by this process while the tool runs, beside any running instances. */
  catalog?: string;
  /** Offline: the catalog user the statements run as (default: the bootstrap superuser). */
  user?: string;
  /** Offline: the data directory's or PostgreSQL catalog's encryption key, if it has one. */
  keys?: Keys;
}

export interface Target {
  conn: SqlConnection;
  close(): Promise<void>;
}

export async function openTarget(opts: TargetOptions): Promise<Target> {
  if ([opts.data, opts.url, opts.catalog].filter((o) => o !== undefined).length > 1) throw new Error('--data, --url and --catalog cannot be used together');
  if (opts.data !== undefined || opts.catalog !== undefined) {
    const engine = new Engine({
      ...(opts.catalog !== undefined ? { store: new PostgresStore(opts.catalog, { log: (l) => process.stderr.write(`${l}\n`), keys: opts.keys }) } : dataDirOptions(opts.data!, { keys: opts.keys })),
      bootstrapUser: process.env.PORTCULLIS_BOOTSTRAP_USER,
      bootstrapPassword: process.env.PORTCULLIS_BOOTSTRAP_PASSWORD,
    });
    await engine.open();
    let conn: LocalConnection;
    try {
      conn = LocalConnection.open(engine, opts.user ?? engine.bootstrapUserName());
    } catch (err) {
      await engine.close();
      throw err;
    }
    return {
      conn,
      close: async () => {
        await conn.close();
        await engine.close();
      },
    };
  }
  let url = opts.url;
  if (url === undefined && !process.env.PGHOST && !process.env.PGPORT) url = `postgres://127.0.0.1:6432/default`;
  const conn = await PgConnection.open(url);
  return { conn, close: () => conn.close() };
}
