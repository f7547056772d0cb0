import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, loginError, startTestServer } from '../support/server.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('psql against portcullis', () => {
  it('logs in as the bootstrap admin, creates a user, and that user logs in', async () => {
    const r = await psql(server.port, ['-At', '-c', "CREATE USER alice WITH PASSWORD 'wonderland' ROLE readwrite", '-c', 'SELECT current_user, $auth.role']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('CREATE USER\nadmin|superuser\n');
    expect(r.code).toBe(0);

    const a = await psql(server.port, ['-At', '-c', 'SELECT current_user, session_user, current_database(), $auth.method, $auth.databases'], {
      user: 'alice',
      password: 'wonderland',
    });
    expect(a.stderr).toBe('');
    expect(a.stdout).toBe('alice|alice|default|password|{default}\n');
  });

  it('gives a wrong password and an unknown user the same answer', async () => {
    await psql(server.port, ['-c', "CREATE USER bob PASSWORD 'right'"]);
    const wrong = await psql(server.port, ['-c', 'SELECT 1'], { user: 'bob', password: 'wrong' });
    const unknown = await psql(server.port, ['-c', 'SELECT 1'], { user: 'nosuchuser', password: 'wrong' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('FATAL:  password authentication failed for user "bob"');
    expect(unknown.stderr.replace('nosuchuser', 'bob')).toBe(wrong.stderr);
    // The SQLSTATE, through a driver that exposes it:
    expect((await loginError(server.port, 'bob', 'wrong'))?.code).toBe('28P01');
    expect((await loginError(server.port, 'nosuchuser', 'wrong'))?.code).toBe('28P01');
    expect((await loginError(server.port, 'nosuchuser', 'wrong'))?.message).toBe('password authentication failed for user "nosuchuser"');
  });

  it('refuses NOLOGIN with 28000 and an expired VALID UNTIL like a wrong password', async () => {
    await psql(server.port, ['-c', "CREATE USER carol PASSWORD 'pw' NOLOGIN", '-c', "CREATE USER dave PASSWORD 'pw' VALID UNTIL '2001-01-01 00:00:00+00'"]);
    const nologin = await loginError(server.port, 'carol', 'pw');
    expect(nologin?.code).toBe('28000');
    expect(nologin?.message).toBe('user "carol" is not permitted to log in');
    const expired = await loginError(server.port, 'dave', 'pw');
    expect(expired?.code).toBe('28P01');
    expect(expired?.message).toBe('password authentication failed for user "dave"');
    // Extending the validity lets dave in.
    await psql(server.port, ['-c', "ALTER USER dave VALID UNTIL 'infinity'"]);
    expect(await loginError(server.port, 'dave', 'pw')).toBeNull();
  });

  it('shows a syntax error with LINE 1 and a caret, and the session goes on', async () => {
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=0', '-At'], { input: 'CREATE USR x;\nSELECT 42;\n' });
    expect(r.stderr).toMatch(/^ERROR: {2}syntax error at or near "USR"\nLINE 1: CREATE USR x;\n {15}\^\nHINT: {2}Expected USER, TENANT, .*\.\n$/);
    expect(r.stdout).toBe('42\n');
  });

  it('shows SQLSTATEs with VERBOSITY verbose and survives every kind of error in one session', async () => {
    const input = [
      '\\set VERBOSITY verbose',
      "CREATE USER erin PASSWORD 'x';",
      "CREATE USER erin PASSWORD 'x';",
      'DROP USER nobody_here;',
      "CREATE USER frank ROLE wizard;",
      "CREATE USER gina VALID UNTIL 'not a date';",
      "CREATE USER hank PASSWORD 'md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';",
      'SELECT $auth.nonsense;',
      'SELECT nosuch();',
      'SELECT current_user;',
    ].join('\n');
    const r = await psql(server.port, ['-At'], { input });
    const codes = [...r.stderr.matchAll(/ERROR:  ([0-9A-Z]{5}):/g)].map((m) => m[1]);
    expect(codes).toEqual(['42710', '42704', '42704', '22007', '22023', '42704', '42883']);
    expect(r.stderr).toContain('ERROR:  42710: user "erin" already exists');
    expect(r.stderr).toContain('HINT:  Give the plain password');
    expect(r.stderr).not.toContain('md5aaaa');
    expect(r.stdout.trim().split('\n')).toEqual(['CREATE USER', 'admin']);
  });

  it('lets every user change their own password, and nothing else', async () => {
    await psql(server.port, ['-c', "CREATE USER ivy PASSWORD 'old' ROLE readonly"]);
    const r = await psql(server.port, ['-At', '-v', 'VERBOSITY=verbose'], {
      user: 'ivy',
      password: 'old',
      input: "\\set VERBOSITY verbose\nALTER USER CURRENT_USER PASSWORD 'new';\nALTER USER ivy ROLE admin;\nCREATE USER jack;\n",
    });
    expect(r.stdout).toBe('ALTER USER\n');
    expect(r.stderr).toContain('ERROR:  42501: permission denied to change your own role');
    expect(r.stderr).toContain('ERROR:  42501: permission denied for CREATE USER\nDETAIL:  ivy has role readonly; CREATE USER needs admin or higher.');
    expect(await loginError(server.port, 'ivy', 'old')).not.toBeNull();
    expect(await loginError(server.port, 'ivy', 'new')).toBeNull();
  });

  it('enforces CONNECTION LIMIT with 53300', async () => {
    await psql(server.port, ['-c', "CREATE USER kim PASSWORD 'pw' CONNECTION LIMIT 1"]);
    const first = await client(server.port, 'kim', 'pw');
    try {
      const e = await loginError(server.port, 'kim', 'pw');
      expect(e?.code).toBe('53300');
      expect(e?.message).toBe('too many connections for user "kim"');
    } finally {
      await first.end();
    }
    // Once the first session is gone, kim gets in again (the count follows the socket close).
    await expect.poll(async () => (await loginError(server.port, 'kim', 'pw')) === null).toBe(true);
  });

  it('refuses an unknown startup database with 3D000', async () => {
    const e = await loginError(server.port, 'admin', 'bootstrap-secret', 'nodb');
    expect(e?.code).toBe('3D000');
    expect(e?.message).toBe('database "nodb" does not exist');
  });
});
