import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attempt, openShop, stateOf, type Shop } from './attack-shop.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * Attacks that try to gain privileges inside PostgreSQL: roles, grants, default
 * privileges, extensions, server files and programs, server configuration, other
 * databases. alice has READ and WRITE on shop; dev also has SCHEMA. Each is refused with
 * 42501 (by portcullis before PostgreSQL, or by PostgreSQL itself), or does not exist.
 */
describe.each(bothPlanes())('gaining privileges, on the $name data plane', (plane) => {
  let shop: Shop;
  let alice: pg.Client;
  let dev: pg.Client;

  beforeAll(async () => {
    shop = await openShop(plane);
    alice = await shop.connect('alice');
    dev = await shop.connect('dev');
  }, 180_000);

  afterAll(async () => {
    await shop?.close();
  });

  /** The PostgreSQL role alice's SQL runs as has nothing more than before. */
  async function nothingGained(): Promise<void> {
    const r = await alice.query(
      `SELECT r.rolsuper AS su, r.rolcreaterole AS cr, r.rolcreatedb AS cd, r.rolbypassrls AS by, r.rolreplication AS rep,
              (SELECT count(*)::int FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid) AS memberships,
              has_table_privilege('public.orders', 'TRUNCATE, REFERENCES, TRIGGER') AS more,
              has_schema_privilege('public', 'CREATE') AS can_create
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    );
    expect(r.rows).toEqual([{ su: false, cr: false, cd: false, by: false, rep: false, memberships: 0, more: false, can_create: false }]);
    const roles = await alice.query("SELECT count(*)::int AS n FROM pg_catalog.pg_roles WHERE rolname IN ('evil', 'evil2')");
    expect(roles.rows).toEqual([{ n: 0 }]);
    expect(await shop.visibleOwners('alice', alice)).toEqual(['alice']);
    expect(await shop.visibleOwners('bob')).toEqual(['bob']);
  }

  it("PostgreSQL's CREATE / ALTER / DROP ROLE, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, REASSIGN and DROP OWNED: 42501", async () => {
    const owner = (await alice.query("SELECT tableowner::text AS o FROM pg_catalog.pg_tables WHERE tablename = 'orders'")).rows[0].o as string;
    for (const c of [alice, dev]) {
      for (const sql of [
        'CREATE ROLE evil SUPERUSER',
        "CREATE ROLE evil2 LOGIN PASSWORD 'x'",
        "CREATE USER evil WITH SUPERUSER PASSWORD 'x'",
        'ALTER ROLE CURRENT_USER SUPERUSER',
        'ALTER ROLE CURRENT_USER BYPASSRLS',
        "ALTER ROLE CURRENT_USER SET row_security = 'off'",
        'ALTER USER CURRENT_USER CREATEROLE',
        'DROP ROLE postgres',
        'GRANT SELECT ON orders TO PUBLIC',
        'GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC',
        `GRANT ${owner} TO CURRENT_USER`,
        'GRANT pg_read_all_data TO CURRENT_USER',
        'GRANT CREATE ON SCHEMA public TO PUBLIC',
        'GRANT USAGE ON LANGUAGE plpgsql TO PUBLIC',
        'GRANT EXECUTE ON FUNCTION set_config(text, text, boolean) TO PUBLIC',
        'REVOKE SELECT ON orders FROM PUBLIC',
        'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO PUBLIC',
        'REASSIGN OWNED BY CURRENT_USER TO postgres',
        'DROP OWNED BY CURRENT_USER',
      ]) {
        expect(await stateOf(c, sql), sql).toBe('42501');
      }
    }
    await nothingGained();
  });

  it('CREATE EXTENSION, LOAD, ALTER SYSTEM, superuser-only settings: 42501', async () => {
    for (const c of [alice, dev]) {
      for (const sql of [
        'CREATE EXTENSION dblink',
        'CREATE EXTENSION IF NOT EXISTS postgres_fdw',
        'CREATE EXTENSION pgcrypto',
        'ALTER EXTENSION plpgsql UPDATE',
        "LOAD 'plpgsql'",
        "LOAD '$libdir/passwordcheck'",
        "ALTER SYSTEM SET shared_preload_libraries = 'x'",
        'ALTER SYSTEM RESET ALL',
        // PostgreSQL's own superuser-only settings; in a message of SQL so they reach it.
        "SELECT 1; SET session_replication_role = 'replica'",
        "SELECT 1; SET log_statement = 'none'",
        "SELECT 1; SET lo_compat_privileges = on",
      ]) {
        expect(await stateOf(c, sql), sql).toBe('42501');
      }
    }
    await nothingGained();
  });

  it('server files and programs: COPY TO / FROM a file or PROGRAM, pg_read_file, pg_ls_dir, lo_import, lo_export: 42501', async () => {
    for (const sql of [
      "COPY orders FROM PROGRAM 'id'",
      "COPY orders TO PROGRAM 'cat > /tmp/pcu-attack'",
      "COPY orders FROM '/etc/passwd'",
      "COPY orders TO '/tmp/pcu-attack'",
      "COPY (SELECT 1) TO '/tmp/pcu-attack'",
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT pg_read_file('postgresql.conf')",
      "SELECT pg_read_binary_file('/etc/passwd')",
      "SELECT pg_ls_dir('.')",
      "SELECT pg_stat_file('/etc/passwd')",
      "SELECT lo_import('/etc/passwd')",
      'SELECT lo_export(1, \'/tmp/pcu-attack\')',
      'SELECT pg_reload_conf()',
      'SELECT pg_rotate_logfile()',
      // Other backends: cancel, terminate, read their query text (with their $auth literals).
      'SELECT pg_cancel_backend(1)',
      'SELECT pg_terminate_backend(1)',
      'SELECT pg_stat_get_activity(NULL)',
    ]) {
      expect(await stateOf(dev, sql), sql).toBe('42501');
    }
    await nothingGained();
  });

  it('large objects (one profile role owns them for every principal of the profile): refused, by any name, in a view or a default', async () => {
    for (const sql of [
      "SELECT lo_from_bytea(0, 'alice only'::bytea)",
      'SELECT lo_creat(-1)',
      'SELECT pg_catalog.lo_create(0)',
      'SELECT lo_get(16400)',
      "SELECT lo_put(16400, 0, 'x'::bytea)",
      'SELECT lo_open(16400, 262144)',
      'SELECT loread(0, 10)',
      'SELECT lo_unlink(16400)',
      'SELECT "lo_get"(16400)',
      'CREATE VIEW blobs AS SELECT lo_get(16400) AS b',
      'CREATE TABLE blobby (a oid DEFAULT lo_creat(-1))',
    ]) {
      expect(await stateOf(dev, sql), sql).toBe('42501');
    }
    // PostgreSQL's own catalog of them is the superuser's.
    expect(await stateOf(dev, 'SELECT * FROM pg_catalog.pg_largeobject')).toBe('42501');
    await nothingGained();
  });

  it("dblink and postgres_fdw are not installed and cannot be: the functions do not exist (42883), the wrappers neither (42704), a server is 42501", async () => {
    expect(await stateOf(dev, "SELECT dblink_connect('dbname=postgres')")).toBe('42883');
    expect(await stateOf(dev, "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)")).toBe('42883');
    expect(await stateOf(dev, 'CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw')).toBe('42704');
    expect(await stateOf(dev, 'CREATE FOREIGN DATA WRAPPER mine')).toBe('42501');
    await nothingGained();
  });

  it('CREATE PUBLICATION, SUBSCRIPTION, DATABASE, SCHEMA, LANGUAGE, EVENT TRIGGER, CAST: refused', async () => {
    for (const [sql, state] of [
      ['CREATE PUBLICATION everything FOR ALL TABLES', '42501'],
      ["CREATE SUBSCRIPTION s CONNECTION 'dbname=postgres' PUBLICATION p WITH (connect = false)", '42501'],
      ['CREATE SCHEMA mine', '42501'],
      ['CREATE LANGUAGE plperlu', '42501'],
      ['CREATE TRUSTED LANGUAGE mine HANDLER plpgsql_call_handler', '42501'],
      ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()', '42501'],
      ['CREATE CAST (text AS int) WITHOUT FUNCTION', '42501'],
    ] as const) {
      const r = await attempt(dev, sql);
      expect(r.ok ? 'ok' : r.code, sql).toBe(state);
    }
    // CREATE DATABASE is the admin language's: readwrite may not.
    expect(await stateOf(dev, 'CREATE DATABASE mine')).toBe('42501');
    await nothingGained();
  });
});
