import { Engine } from '../engine/engine.js';
import { dataDirOptions } from '../engine/data-dir.js';
import type { Keys } from '../store/cipher.js';
import type { SqlConnection } from './connection.js';
import { LocalConnection } from './local-connection.js';
import { PgConnection } from './pg-connection.js';

/**
 * The catalog a CLI tool works on: offline, a data directory opened in-process (taking the
 * same lock a server takes, so a running server refuses us and we refuse it); online, a
 * running server over pgwire (--url, else the PG* variables, else 127.0.0.1:6432).
 */
export interface TargetOptions {
  data?: string;
  url?: string;
  /** Offline: the catalog user the statements run as (default: the bootstrap superuser). */
  user?: string;
  /** Offline: the data directory's encryption key, if it has one. */
  keys?: Keys;
}

export interface Target {
  conn: SqlConnection;
  close(): Promise<void>;
}

export async function openTarget(opts: TargetOptions): Promise<Target> {
  if (opts.data !== undefined && opts.url !== undefined) throw new Error('--data and --url cannot be used together');
  if (opts.data !== undefined) {
    const engine = new Engine({
      ...dataDirOptions(opts.data, { keys: opts.keys }),
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
