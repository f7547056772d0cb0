import { mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOG_FILE, SNAPSHOT_FILE } from '../../src/store/log-store.js';
import { decodeLog, encodeRecord, header, HEADER_SIZE, MAGIC, SNAPSHOT_MAGIC } from '../../src/store/log-format.js';
import { cli } from '../support/cli.js';
import { psql } from '../support/psql.js';
import { loginError, spawnServer, type ServerProcess } from '../support/server.js';

/** Where the log's data ends (it is preallocated: zeros follow). */
function dataEnd(buf: Buffer): number {
  const r = decodeLog(buf);
  if (r.kind === 'damaged') throw new Error(r.reason);
  return r.end;
}

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
    const end = dataEnd(await readFile(file));
    // Half of a record where the next one would go, as a crash mid-write leaves it.
    const fh = await open(file, 'r+');
    await fh.write(encodeRecord([{ op: 'delete', table: 'users', id: 4 }]).subarray(0, 11), 0, 11, end);
    await fh.close();
    proc = await spawnServer(['--data', dir]);
    expect(proc.stderr()).toMatch(new RegExp(`discarding a torn final record \\(11 bytes at offset ${end}\\)`));
    expect(dataEnd(await readFile(file))).toBe(end);
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
    await expect(spawnServer(['--data', dir])).rejects.toThrow(/catalog\.log is damaged at byte offset 24: checksum mismatch/);
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

  it('upgrades a data directory of log format version 1 in place', async () => {
    proc = await spawnServer(['--data', dir]);
    await psql(proc.port, ['-c', 'CREATE USER from_v1']);
    await proc.stop();
    // The same records behind version 1's 16-byte header (no sequence number).
    const file = path.join(dir, LOG_FILE);
    const v2 = await readFile(file);
    const v1Header = Buffer.alloc(16);
    MAGIC.copy(v1Header, 0);
    v1Header.writeUInt32BE(1, 8);
    await writeFile(file, Buffer.concat([v1Header, v2.subarray(HEADER_SIZE)]));
    proc = await spawnServer(['--data', dir]);
    expect(proc.stderr()).toContain('upgrading the log from format version 1 to 2');
    expect((await psql(proc.port, ['-At', '-c', 'SHOW USERS'])).stdout).toContain('from_v1|');
    await proc.stop();
    expect((await readFile(file)).readUInt32BE(8)).toBe(2);
  });

  it('reads a snapshot of format version 1, and the next compaction writes version 2', async () => {
    proc = await spawnServer(['--data', dir]);
    await psql(proc.port, ['-c', "CREATE USER from_v1_snapshot PASSWORD 'kept'"]);
    await proc.stop();
    // The catalog as version 1 held it: chunks of insert mutations, as JSON records.
    const log = decodeLog(await readFile(path.join(dir, LOG_FILE)));
    if (log.kind === 'damaged') throw new Error(log.reason);
    const commits = log.records as unknown[][];
    const v1 = Buffer.alloc(HEADER_SIZE);
    SNAPSHOT_MAGIC.copy(v1, 0);
    v1.writeUInt32BE(1, 8);
    v1.writeBigUInt64BE(BigInt(log.firstSeq + commits.length - 1), 16);
    const chunks = commits.map((c) => encodeRecord(c.filter((m) => (m as { op: string }).op !== 'audit'), null, SNAPSHOT_MAGIC));
    await writeFile(path.join(dir, SNAPSHOT_FILE), Buffer.concat([v1, ...chunks, encodeRecord({ end: chunks.length }, null, SNAPSHOT_MAGIC)]));
    await writeFile(path.join(dir, LOG_FILE), header(log.firstSeq + commits.length));

    proc = await spawnServer(['--data', dir]);
    expect(await loginError(proc.port, 'from_v1_snapshot', 'kept')).toBeNull();
    await proc.stop();
    expect((await cli(['compact', '--data', dir])).code).toBe(0);
    expect((await readFile(path.join(dir, SNAPSHOT_FILE))).readUInt32BE(8)).toBe(2);
    proc = await spawnServer(['--data', dir]);
    expect(await loginError(proc.port, 'from_v1_snapshot', 'kept')).toBeNull();
  });

  it('compacts the log into a snapshot by size and by `portcullis compact`, keeping every commit and every used id', async () => {
    proc = await spawnServer(['--data', dir, '--compact-at', '2048']);
    for (let i = 0; i < 6; i++) {
      await psql(proc.port, ['-c', Array.from({ length: 10 }, (_, j) => `CREATE USER u_${i}_${j}`).join('; ')]);
    }
    await psql(proc.port, ['-c', 'CREATE USER highest', '-c', 'DROP USER highest']);
    const snapshot = path.join(dir, SNAPSHOT_FILE);
    expect((await stat(snapshot)).size).toBeGreaterThan(0);
    expect(dataEnd(await readFile(path.join(dir, LOG_FILE)))).toBeLessThan(HEADER_SIZE + 2048 + 1024);
    await proc.stop('SIGKILL');

    const r = await cli(['compact', '--data', dir]);
    expect(r.stdout).toMatch(/^compacted .*: log of \d+ bytes replaced by a snapshot of \d+ bytes\n$/);
    expect((await stat(path.join(dir, LOG_FILE))).size).toBe(HEADER_SIZE);

    proc = await spawnServer(['--data', dir]);
    const users = (await psql(proc.port, ['-At', '-F', ' ', '-c', 'SHOW USERS'])).stdout.split('\n').filter(Boolean);
    expect(users).toHaveLength(61);
    const maxId = Math.max(...users.map((l) => Number(l.split(' ')[1])));
    // The dropped user's id (the highest ever) is not handed out again after a snapshot.
    await psql(proc.port, ['-c', 'CREATE USER newest']);
    const newest = (await psql(proc.port, ['-At', '-F', ' ', '-c', 'SHOW USERS'])).stdout.split('\n').find((l) => l.startsWith('newest '))!;
    expect(Number(newest.split(' ')[1])).toBeGreaterThan(maxId + 1);
  });

  it('refuses a damaged snapshot, naming it', async () => {
    proc = await spawnServer(['--data', dir]);
    await psql(proc.port, ['-c', 'CREATE USER one']);
    await proc.stop();
    expect((await cli(['compact', '--data', dir])).code).toBe(0);
    const snapshot = path.join(dir, SNAPSHOT_FILE);
    const buf = await readFile(snapshot);
    buf[40] = buf[40]! ^ 0xff;
    await writeFile(snapshot, buf);
    await expect(spawnServer(['--data', dir])).rejects.toThrow(/catalog\.snapshot is damaged at byte offset 24: checksum mismatch/);
    proc = null;
  });
});
