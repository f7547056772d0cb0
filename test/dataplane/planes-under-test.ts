import pg from 'pg';
import { superuserLockdownSql } from '../../src/dataplane/provision/index.js';
import type { ServerOptions } from '../../src/server.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

/**
 * The two data planes end-to-end tests run on, set up as an operator would:
 * - embedded: PGlite in the portcullis process (in memory unless the test gives a dataDir);
 * - upstream: Debian's PostgreSQL, portcullis logged in as `gateway`, a role with CREATEDB
 *   and CREATEROLE and no superuser, after a superuser ran the lock-down once in template1
 *   (docs/data-plane.md).
 *
 *   describe.each(bothPlanes())('... on the $name data plane', (plane) => { ... plane.options() ... });
 */
export interface PlaneUnderTest {
  name: string;
  kind: 'embedded' | 'upstream';
  /** Starts what the plane needs (a PostgreSQL server) and gives the server options that use it. */
  options(): Promise<Partial<ServerOptions>>;
  /** The PostgreSQL server behind an upstream plane, once options() ran (its superuser can look inside). */
  postgres(): PostgresServer | null;
  stop(): Promise<void>;
}

const GATEWAY_PASSWORD = 'gateway-secret';

export function embeddedPlane(): PlaneUnderTest {
  return { name: 'embedded (PGlite)', kind: 'embedded', options: async () => ({ dataPlane: 'embedded' }), postgres: () => null, stop: async () => {} };
}

export function upstreamPlane(): PlaneUnderTest {
  let pgsrv: PostgresServer | null = null;
  return {
    name: 'upstream (PostgreSQL, portcullis no superuser)',
    kind: 'upstream',
    async options() {
      pgsrv = await startPostgres();
      // What an operator does once as a superuser (docs/data-plane.md): a role for portcullis
      // with CREATEDB and CREATEROLE only, and the lock-down in template1.
      await pgsrv.query(`CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD '${GATEWAY_PASSWORD}'`);
      const t1 = new pg.Client(pgsrv.connection(undefined, undefined, 'template1'));
      await t1.connect();
      await t1.query(superuserLockdownSql('gateway'));
      await t1.end();
      return { dataPlane: { upstream: `postgres://gateway:${GATEWAY_PASSWORD}@${pgsrv.host}:${pgsrv.port}/postgres` } };
    },
    postgres: () => pgsrv,
    async stop() {
      await pgsrv?.stop();
    },
  };
}

/** A fresh pair for one describe.each: each plane is started by its block's beforeAll. */
export const bothPlanes = (): PlaneUnderTest[] => [embeddedPlane(), upstreamPlane()];
