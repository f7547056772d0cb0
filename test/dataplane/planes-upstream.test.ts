import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownSync, readdirSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { makeCerts, type TestCerts } from '../support/certs.js';
import { UpstreamPlane } from '../../src/dataplane/upstream.js';
import { PgRawConnection, parsePgUrl } from '../../src/dataplane/pg-raw.js';
import { planeDatabaseName } from '../../src/dataplane/names.js';
import type { PlaneDatabase } from '../../src/dataplane/types.js';
import { decode, extended, serialize, simple, summary, untilReady } from './planes-support.js';

/**
 * The upstream plane against Debian's PostgreSQL: portcullis logs in as a role that is not
 * a superuser (LOGIN CREATEDB CREATEROLE, a SCRAM-SHA-256 password), the server also
 * offers TLS with a test CA.
 */
let pgsrv: PostgresServer;
let certs: TestCerts;
let plane: UpstreamPlane;
let url: string;
const db: PlaneDatabase = { tenantId: 1, databaseId: 1, tenantName: 'default', databaseName: 'default' };

/** The server runs as the postgres OS user, which must own its key. */
function giveToPostgres(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, gid);
  for (const f of readdirSync(dir)) chownSync(path.join(dir, f), uid, gid);
}

beforeAll(async () => {
  certs = makeCerts();
  // One method per role, SCRAM for everyone else.
  const hba = path.join(certs.dir, 'pg_hba.conf');
  writeFileSync(
    hba,
    ['host all pcu_trust 127.0.0.1/32 trust', 'host all pcu_md5 127.0.0.1/32 md5', 'host all pcu_clear 127.0.0.1/32 password', 'host all all 127.0.0.1/32 scram-sha-256', 'local all all scram-sha-256', ''].join('\n'),
  );
  giveToPostgres(certs.dir);
  chmodSync(certs.keyFile, 0o600);
  chmodSync(certs.dir, 0o755);
  pgsrv = await startPostgres({ settings: { ssl: 'on', ssl_cert_file: certs.certFile, ssl_key_file: certs.keyFile, hba_file: path.join(certs.dir, 'pg_hba.conf') } });
  await pgsrv.query("CREATE ROLE pcu_gate LOGIN CREATEDB CREATEROLE PASSWORD 'gate secret'");
  url = `postgres://pcu_gate:gate%20secret@127.0.0.1:${pgsrv.port}/postgres?sslmode=disable`;
  plane = new UpstreamPlane(url);
  await plane.ensureDatabase(db);
  await plane.withAdmin(db, (sql) => sql.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')"));
}, 120_000);

afterAll(async () => {
  await plane?.close();
  await pgsrv?.stop();
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

describe('upstream plane: connections', () => {
  it('logs in with SCRAM-SHA-256 as a non-superuser, and ensureDatabase created its database (idempotently)', async () => {
    const rows = await pgsrv.query<{ datname: string; owner: string }>(
      'SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [planeDatabaseName(db)],
    );
    expect(rows).toEqual([{ datname: 'pcu_t1_d1', owner: 'pcu_gate' }]);
    await plane.ensureDatabase(db);
    const roles = await pgsrv.query<{ rolsuper: boolean }>("SELECT rolsuper FROM pg_roles WHERE rolname = 'pcu_gate'");
    expect(roles).toEqual([{ rolsuper: false }]);
    const auth = await pgsrv.query<{ method: string }>("SELECT left(rolpassword, 13) AS method FROM pg_authid WHERE rolname = 'pcu_gate'");
    expect(auth).toEqual([{ method: 'SCRAM-SHA-256' }]);
  });

  it('a wrong password is refused with 28P01', async () => {
    const bad = parsePgUrl(`postgres://pcu_gate:wrong@127.0.0.1:${pgsrv.port}/postgres?sslmode=disable`);
    await expect(PgRawConnection.connect(bad)).rejects.toMatchObject({ code: '28P01' });
  });

  it('connects over TLS with sslmode=verify-full and the URL sslrootcert', async () => {
    const target = parsePgUrl(`postgres://pcu_gate:gate%20secret@localhost:${pgsrv.port}/postgres?sslmode=verify-full&sslrootcert=${certs.caFile}`);
    const conn = await PgRawConnection.connect(target);
    try {
      expect(conn.tls).toBe(true);
      expect(await conn.admin().query('SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).toEqual([{ ssl: 'true' }]);
    } finally {
      conn.close();
    }
    // require without a root certificate: encrypted, not verified.
    const required = await PgRawConnection.connect(parsePgUrl(`postgres://pcu_gate:gate%20secret@127.0.0.1:${pgsrv.port}/postgres?sslmode=require`));
    expect(required.tls).toBe(true);
    required.close();
    // Another CA: verify-ca refuses the chain.
    const otherCa = makeCerts('other');
    try {
      const wrongCa = parsePgUrl(`postgres://pcu_gate:gate%20secret@127.0.0.1:${pgsrv.port}/postgres?sslmode=verify-ca&sslrootcert=${otherCa.caFile}`);
      await expect(PgRawConnection.connect(wrongCa)).rejects.toThrow(/TLS \(sslmode=verify-ca\)/);
    } finally {
      rmSync(otherCa.dir, { recursive: true, force: true });
    }
  });

  it('verify-full checks the host name, verify-ca only the chain', async () => {
    // This machine's own name, when it resolves to 127.0.0.1: the certificate does not name it.
    const name = os.hostname();
    const resolved = await lookup(name, { family: 4 }).catch(() => null);
    if (name === 'localhost' || resolved?.address !== '127.0.0.1') {
      console.log(`skipped: ${name} does not resolve to 127.0.0.1`);
      return;
    }
    const at = (mode: string) => parsePgUrl(`postgres://pcu_gate:gate%20secret@${name}:${pgsrv.port}/postgres?sslmode=${mode}&sslrootcert=${certs.caFile}`);
    await expect(PgRawConnection.connect(at('verify-full'))).rejects.toThrow(/TLS \(sslmode=verify-full\).*(altnames|name)/i);
    const ca = await PgRawConnection.connect(at('verify-ca'));
    expect(ca.tls).toBe(true);
    ca.close();
  });

  it('sslmode=disable stays in the clear; trust, md5 and cleartext password logins work too', async () => {
    await pgsrv.query("CREATE ROLE pcu_trust LOGIN; CREATE ROLE pcu_clear LOGIN PASSWORD 'clear pw'; SET password_encryption = 'md5'; CREATE ROLE pcu_md5 LOGIN PASSWORD 'md5 pw'");
    const who = async (u: string) => {
      const conn = await PgRawConnection.connect(parsePgUrl(`postgres://${u}@127.0.0.1:${pgsrv.port}/postgres?sslmode=disable`));
      try {
        expect(conn.tls).toBe(false);
        return (await conn.admin().query('SELECT current_user AS u'))[0]!.u;
      } finally {
        conn.close();
      }
    };
    expect(await who('pcu_trust')).toBe('pcu_trust');
    expect(await who('pcu_clear:clear%20pw')).toBe('pcu_clear');
    expect(await who('pcu_md5:md5%20pw')).toBe('pcu_md5');
    await expect(who('pcu_md5:wrong')).rejects.toMatchObject({ code: '28P01' });
    // With no password in the URL, a server that asks for one gets a clear refusal.
    await expect(who('pcu_md5')).rejects.toThrow(/asks a password for pcu_md5/);
  });
});

describe('upstream plane: the protocol through a lease', () => {
  it('runs Parse/Bind/Describe/Execute/Sync and returns rows', async () => {
    const lease = await plane.lease(db, {});
    try {
      expect(lease.fresh).toBe(true);
      lease.write(Buffer.concat([extended('SELECT v FROM t WHERE id = $1', ['2']), serialize.sync()]));
      expect(summary(await untilReady(lease))).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'row ["b"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('discards the rest of a pipeline after an error until Sync, then is idle', async () => {
    const lease = await plane.lease(db, {});
    try {
      lease.write(Buffer.concat([extended('SELECT 1 / (id - 1) FROM t WHERE id = 1'), extended('SELECT v FROM t WHERE id = 1'), serialize.sync()]));
      expect(summary(await untilReady(lease))).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'error 22012', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('reports the transaction status: T inside BEGIN, E after an error there', async () => {
    const lease = await plane.lease(db, {});
    try {
      expect(await simple(lease, 'BEGIN')).toEqual(['complete BEGIN', 'ready T']);
      expect(await simple(lease, 'SELECT 1/0')).toEqual(['error 22012', 'ready E']);
      expect(await simple(lease, 'ROLLBACK')).toEqual(['complete ROLLBACK', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('COPY FROM STDIN and COPY TO STDOUT round trip', async () => {
    const lease = await plane.lease(db, {});
    try {
      expect(await simple(lease, 'CREATE TABLE c (id int, name text)')).toEqual(['complete CREATE TABLE', 'ready I']);
      lease.write(serialize.query('COPY c FROM STDIN'));
      expect(decode(await lease.next()).name).toBe('copyInResponse');
      lease.write(serialize.copyData(Buffer.from('1\tone\n')));
      lease.write(Buffer.concat([serialize.copyData(Buffer.from('2\ttwo\n')), serialize.copyDone()]));
      expect(summary(await untilReady(lease))).toEqual(['complete COPY 2', 'ready I']);
      expect(await simple(lease, 'COPY c TO STDOUT')).toEqual(['copyOutResponse', 'copyData 1\tone\n', 'copyData 2\ttwo\n', 'copyDone', 'complete COPY 2', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('withAdmin and lease.admin run portcullis SQL with text results', async () => {
    expect(await plane.withAdmin(db, (sql) => sql.query('SELECT current_user AS u, $1::int + 1 AS n', ['41']))).toEqual([{ u: 'pcu_gate', n: '42' }]);
    const lease = await plane.lease(db, {});
    try {
      expect(await lease.admin.query('SELECT count(*) AS n FROM t')).toEqual([{ n: '2' }]);
      await expect(lease.admin.exec('SELECT * FROM missing')).rejects.toMatchObject({ code: '42P01' });
      expect(await simple(lease, 'SELECT 1')).toEqual(['rowDescription', 'row ["1"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  });
});

describe('upstream plane: sessions and failures', () => {
  it('pool_mode = session: a session keeps its connection across leases (fresh only the first time); its second lease waits for the first', async () => {
    // Transaction pooling (the default) is test/dataplane/pool.test.ts's.
    const plane = new UpstreamPlane(url, { pool: { mode: 'session' } });
    const session = {};
    const a = await plane.lease(db, session);
    expect(a.fresh).toBe(true);
    expect(await simple(a, 'BEGIN; INSERT INTO t VALUES (3, $$c$$)')).toEqual(['complete BEGIN', 'complete INSERT 0 1', 'ready T']);
    let second = false;
    const bp = plane.lease(db, session).then((l) => ((second = true), l));
    // Another session has its own connection meanwhile, and does not see the uncommitted row.
    const other = await plane.lease(db, {});
    expect(await simple(other, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["2"]', 'complete SELECT 1', 'ready I']);
    other.release();
    expect(second).toBe(false);
    a.release();
    const b = await bp;
    expect(b.fresh).toBe(false);
    // The same connection: the transaction is still open.
    expect(await simple(b, 'ROLLBACK')).toEqual(['complete ROLLBACK', 'ready I']);
    b.release();
    plane.endSession(session);
    await plane.close();
  });

  it('a terminated backend rejects next(), and the next lease opens a new connection', async () => {
    const session = {};
    const a = await plane.lease(db, session);
    const [{ pid }] = (await a.admin.query('SELECT pg_backend_pid()::text AS pid')) as [{ pid: string }];
    await pgsrv.query('SELECT pg_terminate_backend($1::int)', [pid]);
    a.write(serialize.query('SELECT 1'));
    // PostgreSQL's FATAL 57P01 may arrive first; then the closed connection rejects.
    const seen: string[] = [];
    await expect(
      (async () => {
        for (;;) seen.push(summary([decode(await a.next())])[0]!);
      })(),
    ).rejects.toThrow(/upstream connection/);
    expect(seen.filter((m) => m !== 'error 57P01')).toEqual([]);
    a.release();
    const c = await plane.lease(db, session);
    try {
      expect(c.fresh).toBe(true);
      expect(await simple(c, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["2"]', 'complete SELECT 1', 'ready I']);
      const [{ pid: pid2 }] = (await c.admin.query('SELECT pg_backend_pid()::text AS pid')) as [{ pid: string }];
      expect(pid2).not.toBe(pid);
    } finally {
      c.release();
      plane.endSession(session);
    }
  });

  it('cancel() ends the running statement with 57014 and the connection goes on', async () => {
    const lease = await plane.lease(db, {});
    try {
      lease.write(serialize.query('SELECT pg_sleep(60)'));
      // A cancel only interrupts a statement that runs: wait until the server says it does.
      for (;;) {
        const rows = await pgsrv.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(60)'");
        if (rows.length > 0) break;
      }
      await lease.cancel();
      expect(summary(await untilReady(lease))).toEqual(['rowDescription', 'error 57014', 'ready I']);
      expect(await simple(lease, 'SELECT 1')).toEqual(['rowDescription', 'row ["1"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  }, 20_000);

  it('dropDatabase drops it, closing portcullis\'s own connections to it', async () => {
    const other: PlaneDatabase = { tenantId: 2, databaseId: 7, tenantName: 'acme', databaseName: 'x' };
    await plane.ensureDatabase(other);
    const session = {};
    const l = await plane.lease(other, session);
    expect(await simple(l, 'SELECT current_database()')).toEqual(['rowDescription', 'row ["pcu_t2_d7"]', 'complete SELECT 1', 'ready I']);
    l.release();
    await plane.withAdmin(other, (sql) => sql.exec('SELECT 1'));
    await plane.dropDatabase(other);
    expect(await pgsrv.query("SELECT 1 FROM pg_database WHERE datname = 'pcu_t2_d7'")).toEqual([]);
  });
});
