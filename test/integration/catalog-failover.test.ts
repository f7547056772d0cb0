import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { within } from '../support/catalog-postgres.js';
import { startNode, startStandby, type PgNode } from '../support/pg-cluster.js';
import { client, loginError, startTestServer } from '../support/server.js';

/**
 * Instances on a catalog in PostgreSQL while that PostgreSQL restarts, and while it fails
 * over to a promoted streaming standby named second in a multi-host URL
 * (`target_session_attrs=read-write`): they reconnect, read again and go on, and no commit
 * they acknowledged is lost (synchronous replication for the failover).
 */
const nodes: PgNode[] = [];
const running: RunningServer[] = [];

afterEach(async () => {
  for (const s of running.splice(0)) await s.close();
  for (const n of nodes.splice(0)) await n.remove();
});

async function instance(catalog: string): Promise<RunningServer> {
  const s = await startTestServer({ catalog, log: () => {} });
  running.push(s);
  return s;
}

/** SQLSTATEs a commit may get while its PostgreSQL is away or changing: retried. */
const RETRY = new Set(['40001', '58030']);

/**
 * Creates users `prefix_0`, `prefix_1`, ... through `port` until `stop()`; each one
 * acknowledged goes into `acked`. A 42710 on a retry means the attempt before it landed
 * after all (its acknowledgement was lost with the connection): not acknowledged, moved past.
 */
function stream(port: number, prefix: string, acked: string[], stop: () => boolean): Promise<void> {
  return (async () => {
    const c = await client(port);
    try {
      for (let n = 0; !stop(); ) {
        const name = `${prefix}_${n}`;
        try {
          await c.query(`CREATE USER ${name} PASSWORD 'p'`);
          acked.push(name);
          n++;
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          if (code === '42710') n++;
          else if (!RETRY.has(code)) throw err;
          else await new Promise((r) => setTimeout(r, 10)); // PostgreSQL is away: a short pause between attempts
        }
      }
    } finally {
      await c.end();
    }
  })();
}

const names = async (port: number): Promise<Set<string>> => {
  const c = await client(port);
  try {
    return new Set((await c.query('SHOW USERS')).rows.map((r) => r.name as string));
  } finally {
    await c.end();
  }
};

describe('a catalog in PostgreSQL that restarts or fails over', () => {
  it('PostgreSQL restarted under load: instances go on serving logins while it is down, reconnect, and keep every acknowledged commit', async () => {
    const node = await startNode();
    nodes.push(node);
    await node.query('CREATE DATABASE catalog');
    const url = node.url('catalog');
    const [a, b] = [await instance(url), await instance(url)];
    const admin = await client(a.port);
    await admin.query("CREATE USER sam PASSWORD 's'");
    await admin.end();
    await within(1000, 'B knows sam', async () => (await loginError(b.port, 'sam', 's')) === null);

    const acked: string[] = [];
    let stop = false;
    const load = [stream(a.port, 'ra', acked, () => stop), stream(b.port, 'rb', acked, () => stop)];
    await within(5000, 'commits flow', async () => acked.length >= 10);
    await node.stop();
    // Logins are checked against the catalog in memory: they need no PostgreSQL.
    expect(await loginError(a.port, 'sam', 's')).toBeNull();
    expect(await loginError(b.port, 'sam', 's')).toBeNull();
    const whileDown = acked.length;
    await node.start();
    await within(15_000, 'commits flow again through both', async () => acked.filter((n, i) => i >= whileDown && n.startsWith('ra')).length >= 5 && acked.filter((n, i) => i >= whileDown && n.startsWith('rb')).length >= 5);
    stop = true;
    await Promise.all(load);

    const kept = new Set((await node.query<{ name: string }>(`SELECT m->'row'->>'name' AS name FROM portcullis.commits, json_array_elements(mutations) m WHERE m->>'table' = 'users'`, [], 'catalog')).map((r) => r.name));
    expect(acked.filter((n) => !kept.has(n))).toEqual([]);
    for (const s of [a, b]) {
      await within(2000, 'each instance holds every acknowledged user', async () => {
        const have = await names(s.port);
        return acked.every((n) => have.has(n));
      });
    }
    // And hears the other's commits again (its LISTEN connection came back, or the version check).
    const c = await client(a.port);
    await c.query("CREATE USER tia PASSWORD 't'");
    await c.end();
    await within(1000, 'B knows tia', async () => (await loginError(b.port, 'tia', 't')) === null);
  }, 60_000);

  it('the primary killed and its synchronous standby promoted: instances on `host=primary,standby target_session_attrs=read-write` go on, nothing acknowledged lost', async () => {
    // Every commit acknowledged only once the standby has it (the settings docs/several-instances.md names).
    const primary = await startNode({ settings: { synchronous_commit: 'on' } });
    nodes.push(primary);
    await primary.query('CREATE DATABASE catalog');
    const standby = await startStandby(primary);
    nodes.push(standby);
    // Synchronous once the standby streams (before, a commit would wait for one forever).
    await primary.query(`ALTER SYSTEM SET synchronous_standby_names = '*'`);
    await primary.query('SELECT pg_reload_conf()');
    await within(5000, 'the standby is synchronous', async () => (await primary.query<{ s: string }>('SELECT sync_state AS s FROM pg_stat_replication'))[0]?.s === 'sync');
    // libpq's keyword/value form, as operators write it (test/store/pg-connect.test.ts: the URL form).
    const url = `host=127.0.0.1,127.0.0.1 port=${primary.port},${standby.port} user=postgres password=${primary.password} dbname=catalog target_session_attrs=read-write`;
    const [a, b] = [await instance(url), await instance(url)];
    const admin = await client(a.port);
    await admin.query("CREATE USER uma PASSWORD 'u'");
    await admin.end();

    const acked: string[] = [];
    let stop = false;
    const load = [stream(a.port, 'fa', acked, () => stop), stream(b.port, 'fb', acked, () => stop)];
    await within(5000, 'commits flow', async () => acked.length >= 10);
    await primary.kill();
    const atFailover = acked.length;
    await standby.promote();
    await within(20_000, 'commits flow again through both', async () => acked.filter((n, i) => i >= atFailover && n.startsWith('fa')).length >= 5 && acked.filter((n, i) => i >= atFailover && n.startsWith('fb')).length >= 5);
    stop = true;
    await Promise.all(load);

    const kept = new Set((await standby.query<{ name: string }>(`SELECT m->'row'->>'name' AS name FROM portcullis.commits, json_array_elements(mutations) m WHERE m->>'table' = 'users'`, [], 'catalog')).map((r) => r.name));
    expect(acked.filter((n) => !kept.has(n))).toEqual([]);
    // A new instance on the same URL reads it all from the promoted standby.
    const c = await instance(url);
    const all = await names(c.port);
    expect([...acked, 'uma'].filter((n) => !all.has(n))).toEqual([]);
    expect(await loginError(c.port, 'uma', 'u')).toBeNull();
    const verify = new pg.Client({ connectionString: standby.url('catalog') });
    await verify.connect();
    expect((await verify.query('SELECT pg_is_in_recovery() AS r')).rows).toEqual([{ r: false }]);
    await verify.end();
  }, 90_000);
});
