import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, startTestServer } from '../support/server.js';

// A syntax error aborts a transaction block exactly as any other error does, whichever way
// the statement arrived: what `psql -1 -f` (one BEGIN, then each statement as its own
// message) and every migration script rely on.

let server: RunningServer;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-txerr-'));

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

async function users(): Promise<string[]> {
  const c = await client(server.port);
  try {
    return (await c.query('SHOW USERS')).rows.map((r: { name: string }) => r.name);
  } finally {
    await c.end();
  }
}

function file(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('a syntax error in a transaction block', () => {
  it('psql -1 -f with ON_ERROR_STOP: exit 3, nothing of the file committed', async () => {
    const f = file('stop.sql', "CREATE USER tx_a PASSWORD 'pw';\nCREATE USR tx_typo;\nCREATE USER tx_b PASSWORD 'pw';\n");
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-1', '-f', f]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ERROR:  syntax error at or near "USR"');
    expect(await users()).not.toContain('tx_a');
    expect(await users()).not.toContain('tx_b');
  });

  it('psql -1 -f without ON_ERROR_STOP: later statements get 25P02 and COMMIT answers ROLLBACK', async () => {
    const f = file('go-on.sql', "CREATE USER tx_c PASSWORD 'pw';\nCREATE USR tx_typo;\nCREATE USER tx_d PASSWORD 'pw';\n");
    const r = await psql(server.port, ['-1', '-f', f]);
    expect(r.stderr).toContain('ERROR:  syntax error at or near "USR"');
    expect(r.stderr).toContain('ERROR:  current transaction is aborted, commands ignored until end of transaction block');
    // psql -1 prints neither its BEGIN nor its COMMIT; the block's end is what it leaves behind.
    expect(r.stdout).toBe('CREATE USER\n');
    expect(await users()).not.toContain('tx_c');
    expect(await users()).not.toContain('tx_d');
  });

  it('simple protocol, one statement per message', async () => {
    const c = await client(server.port);
    try {
      await c.query('BEGIN');
      await c.query("CREATE USER tx_e PASSWORD 'pw'");
      await expect(c.query('CREAT USER tx_typo')).rejects.toMatchObject({ code: '42601' });
      await expect(c.query("CREATE USER tx_f PASSWORD 'pw'")).rejects.toMatchObject({ code: '25P02' });
      expect((await c.query('COMMIT')).command).toBe('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await users()).not.toContain('tx_e');
  });

  it('extended protocol: a Parse error aborts the block too', async () => {
    const c = await client(server.port);
    try {
      await c.query('BEGIN');
      // A query with parameters goes Parse / Bind / Execute / Sync.
      await c.query('CREATE USER tx_g PASSWORD $1', ['pw']);
      await expect(c.query('CREATE USR tx_typo PASSWORD $1', ['pw'])).rejects.toMatchObject({ code: '42601' });
      await expect(c.query('CREATE USER tx_h PASSWORD $1', ['pw'])).rejects.toMatchObject({ code: '25P02' });
      expect((await c.query('COMMIT')).command).toBe('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await users()).not.toContain('tx_g');
  });

  it('a typo anywhere in one multi-statement message runs nothing of it', async () => {
    const c = await client(server.port);
    try {
      await expect(c.query("CREATE USER tx_i PASSWORD 'pw'; CREATE USER tx_j PASSWORD 'pw'; CREATE USR tx_typo")).rejects.toMatchObject({ code: '42601' });
      expect(await users()).not.toContain('tx_i');
      // Inside a block, the same message aborts the block.
      await c.query('BEGIN');
      await c.query("CREATE USER tx_k PASSWORD 'pw'");
      await expect(c.query("CREATE USER tx_l PASSWORD 'pw'; GRANT READ ON DATABSE default TO tx_l")).rejects.toMatchObject({ code: '42601' });
      await expect(c.query('SHOW USERS')).rejects.toMatchObject({ code: '25P02' });
      expect((await c.query('COMMIT')).command).toBe('ROLLBACK');
    } finally {
      await c.end();
    }
    const names = await users();
    expect(names).not.toContain('tx_k');
    expect(names).not.toContain('tx_l');
  });
});
