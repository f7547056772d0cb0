import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { startTestServer } from '../support/server.js';

// Every tenant's own database is called `default`, and DEFAULT is a reserved word: the name
// must still be accepted, unquoted, wherever a database name is expected.

let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('the database named default', () => {
  it('is granted, revoked and given to keys and service accounts, unquoted', async () => {
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-At'], {
      input: "CREATE USER bob PASSWORD 'pw' ROLE readonly;\nGRANT WRITE ON DATABASE default TO bob;\nGRANT DELETE ON default.orders TO bob;\n",
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const grants = await psql(server.port, ['-At', '-c', 'SHOW GRANTS FOR bob']);
    expect(grants.stdout).toContain('default');
    expect(grants.stdout.split('\n').filter((l) => l.includes('default')).length).toBeGreaterThanOrEqual(2);

    const more = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-At'], {
      input: [
        "CREATE API KEY 'k' FOR bob WITH DATABASES (default);",
        "CREATE SERVICE ACCOUNT 'etl' FOR DATABASE default;",
        "ALTER SERVICE ACCOUNT 'etl' SET DATABASES default;",
        'CREATE RLS POLICY own ON default.orders FOR READ USING (owner = $auth.username);',
        'REVOKE WRITE ON DATABASE default FROM bob;',
      ].join('\n'),
    });
    expect(more.stderr).toBe('NOTICE:  store this key now: it cannot be shown again\n');
    expect(more.code).toBe(0);
    expect(more.stdout).toMatch(/^k\|[a-z0-9]+\|pcu_/m);
    expect(more.stdout).toContain('CREATE SERVICE ACCOUNT\nALTER SERVICE ACCOUNT\nCREATE RLS POLICY\nREVOKE\n');
  });

  it('gives a syntax error whose hint never names the token it points at', async () => {
    // (A text PostgreSQL's parser refuses too: one it accepts is SQL, refused with 0A000.)
    const r = await psql(server.port, ['-c', 'GRANT READ ON TO bob']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERROR:  syntax error at or near "TO"');
    expect(r.stderr).toContain('HINT:  Expected DATABASE');
    expect(r.stderr).not.toMatch(/HINT:.*\bTO\b/);
  });
});
