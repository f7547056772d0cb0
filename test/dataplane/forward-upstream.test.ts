import { describeForwarding } from './forward-suite.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

/** Forwarding on an upstream PostgreSQL (Debian's, started for the file as the postgres user). */
let pgsrv: PostgresServer | undefined;

describeForwarding('upstream', {
  dataPlane: async () => {
    pgsrv = await startPostgres();
    return { upstream: pgsrv.url };
  },
  oneConnection: false,
  stop: async () => pgsrv?.stop(),
});
