import { mkdtemp, readFile, rm, stat, truncate, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOG_FILE } from '../../src/store/log-store.js';
import { encodeRecord } from '../../src/store/log-format.js';
import { psql } from '../support/psql.js';
import { loginError, spawnServer, type ServerProcess } from '../support/server.js';

let dir: string;
let proc: ServerProcess | null = null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-data-'));
});
afterEach(async () => {
  await proc?.stop('SIGKILL');
  proc = null;
  await rm(dir, { recursive: true, force: true });
});

describe('the embedded catalog across restarts', () => {
  it('keeps users, passwords and attributes after a clean restart and after SIGKILL', async () => {
    proc = await spawnServer(['--data', dir]);
    const r = await psql(proc.port, ['-At', '-c', "CREATE USER alice WITH PASSWORD 'wonderland' ROLE admin CONNECTION LIMIT 4", '-c', "CREATE USER bob PASSWORD 'b'; DROP USER bob"]);
    expect(r.stderr).toBe('');
    await proc.stop('SIGTERM');

    proc = await spawnServer(['--data', dir]);
    expect(await loginError(proc.port, 'alice', 'wonderland')).toBeNull();
    expect((await loginError(proc.port, 'bob', 'b'))?.code).toBe('28P01');
    await psql(proc.port, ['-c', "ALTER USER alice PASSWORD 'through the looking glass' NOLOGIN"]);
    // An acknowledged commit is on disk: SIGKILL right after CommandComplete loses nothing.
    await proc.stop('SIGKILL');

    proc = await spawnServer(['--data', dir]);
    expect((await loginError(proc.port, 'alice', 'through the looking glass'))?.code).toBe('28000');
    const users = await psql(proc.port, ['-At', '-F', ' ', '-c', 'SHOW USERS']);
    expect(users.stdout.split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 7).join(' '))).toEqual([
      'admin 3 default superuser t  -1',
      'alice 4 default admin f  4',
    ]);
  });

  it('refuses a second server on the same directory, naming the owner, and takes over a dead owner', async () => {
    proc = await spawnServer(['--data', dir]);
    await expect(spawnServer(['--data', dir])).rejects.toThrow(new RegExp(`in use by another portcullis process \\(PID ${proc.child.pid}\\)`));
    await proc.stop('SIGKILL'); // leaves its lock file behind
    proc = await spawnServer(['--data', dir]);
    expect(proc.stderr()).toMatch(/taking over a lock left by process \d+, which is no longer running/);
    expect(await loginError(proc.port, 'admin', 'bootstrap-secret')).toBeNull();
  });

  it('prints the bootstrap password once, on the first start only', async () => {
    proc = await spawnServer(['--data', dir], { PORTCULLIS_BOOTSTRAP_PASSWORD: '' });
    const m = /created superuser "admin" with password: (\S+)/.exec(proc.stderr());
    expect(m).not.toBeNull();
    expect(await loginError(proc.port, 'admin', m![1]!)).toBeNull();
    await proc.stop();
    proc = await spawnServer(['--data', dir], { PORTCULLIS_BOOTSTRAP_PASSWORD: '' });
    expect(proc.stderr()).not.toContain(m![1]!);
    expect(proc.stderr()).not.toContain('created superuser');
  });

  it('cuts a torn final record with a warning that says how many bytes', async () => {
    proc = await spawnServer(['--data', dir]);
    await psql(proc.port, ['-c', 'CREATE USER kept']);
    await proc.stop();
    const file = path.join(dir, LOG_FILE);
    const size = (await stat(file)).size;
    // Half of a record, as a crash mid-write leaves it.
    await appendFile(file, encodeRecord([{ op: 'user.delete', id: 4 }]).subarray(0, 11));
    proc = await spawnServer(['--data', dir]);
    expect(proc.stderr()).toMatch(new RegExp(`discarding a torn final record \\(11 bytes at offset ${size}\\)`));
    expect((await stat(file)).size).toBe(size);
    const users = await psql(proc.port, ['-At', '-c', 'SHOW USERS']);
    expect(users.stdout).toContain('kept|');
  });

  it('refuses to start on damage before the tail, naming the file and offset', async () => {
    proc = await spawnServer(['--data', dir]);
    await psql(proc.port, ['-c', 'CREATE USER one', '-c', 'CREATE USER two']);
    await proc.stop();
    const file = path.join(dir, LOG_FILE);
    const buf = await readFile(file);
    buf[30] = buf[30]! ^ 0xff; // inside the first record
    await writeFile(file, buf);
    await expect(spawnServer(['--data', dir])).rejects.toThrow(/catalog\.log is damaged at byte offset 16: checksum mismatch/);
    proc = null;
  });

  it('refuses a log of another format version', async () => {
    proc = await spawnServer(['--data', dir]);
    await proc.stop();
    const file = path.join(dir, LOG_FILE);
    const buf = await readFile(file);
    buf.writeUInt32BE(99, 8);
    await writeFile(file, buf);
    await expect(spawnServer(['--data', dir])).rejects.toThrow(/unsupported log format version 99/);
    proc = null;
    await truncate(file, 0);
  });
});
