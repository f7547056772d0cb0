import { afterAll, afterEach, beforeAll } from 'vitest';
import type { RunningServer, ServerOptions } from '../../src/server.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startTestServer } from './server.js';

/**
 * The set-up of the tests of several instances on one catalog in PostgreSQL: one real
 * PostgreSQL for the file (started before its tests, stopped after), a fresh database per
 * catalog, and instances stopped after each test.
 *
 *   const cat = useCatalogPostgres('two');
 *   const url = await cat.freshCatalog();
 *   const a = await cat.instance(url);
 */
export interface CatalogPostgres {
  /** The PostgreSQL of this file (set once its beforeAll ran). */
  readonly pg: PostgresServer;
  /** A new, empty database on it: the URL of a catalog there. */
  freshCatalog(): Promise<string>;
  /** An instance on `catalog`, closed after the test. */
  instance(catalog: string, opts?: Partial<ServerOptions>): Promise<RunningServer>;
  /** Closes an instance now (it is not closed again after the test). */
  stop(s: RunningServer): Promise<void>;
  /** Closes every instance of the test now. */
  stopAll(): Promise<void>;
  /** Closes `s` after the test, for instances started some other way. */
  track(s: RunningServer): RunningServer;
}

export function useCatalogPostgres(prefix: string): CatalogPostgres {
  let pgsrv: PostgresServer | undefined;
  let databases = 0;
  const running: RunningServer[] = [];
  beforeAll(async () => {
    pgsrv = await startPostgres();
  }, 120_000);
  const stopAll = async () => {
    for (const s of running.splice(0)) await s.close();
  };
  afterEach(stopAll);
  afterAll(async () => {
    await pgsrv?.stop();
  });
  return {
    get pg() {
      if (pgsrv === undefined) throw new Error('useCatalogPostgres: PostgreSQL is not started yet (beforeAll)');
      return pgsrv;
    },
    async freshCatalog() {
      const db = `${prefix}_${++databases}`;
      await this.pg.query(`CREATE DATABASE ${db}`);
      return this.pg.url.replace(/\/postgres$/, `/${db}`);
    },
    async instance(catalog, opts = {}) {
      return this.track(await startTestServer({ catalog, ...opts }));
    },
    async stop(s) {
      running.splice(running.indexOf(s), 1);
      await s.close();
    },
    stopAll,
    track(s) {
      running.push(s);
      return s;
    },
  };
}

/** The database name of a catalog URL. */
export const databaseOf = (catalog: string): string => new URL(catalog).pathname.slice(1);

/** Polls `probe` until it returns true: the time it took, or a failure after `ms`. */
export async function within(ms: number, what: string, probe: () => Promise<boolean>, everyMs = 10): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
