import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { ADMIN_PASSWORD, ROOT } from '../support/server.js';

/**
 * Offline commands on a slow disk: every fdatasync of the spawned CLI takes 20 ms longer
 * (test/support/fs-spy.mjs, preloaded into the real `portcullis` process and its threads),
 * so commits after the first go to the log's flusher thread. The process must live until
 * every flush is answered: exit code 0, its summary, every change there, the lock released.
 */
const SPY = pathToFileURL(path.join(ROOT, 'test/support/fs-spy.mjs')).href;
const ENV = { PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD };

function slowDisk(dir: string) {
  const trace = path.join(dir, `trace-${Math.random().toString(36).slice(2)}`);
  writeFileSync(trace, '');
  return {
    env: {
      ...ENV,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${SPY}`.trim(),
      PCU_FS_SPY_FLUSH_MS: '20',
      PCU_FS_SPY_TRACE: trace,
    },
    /** Flushes of catalog.log by a thread other than the main one (the flusher's). */
    threadFlushes: () => readFileSync(trace, 'utf8').split('\n').filter((l) => /^S [1-9]/.test(l)).length,
  };
}

const FILES = 4;

/** A data directory and FILES migration files, each making a user and a database. */
function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'slow-disk-'));
  const files = Array.from({ length: FILES }, (_, i) => {
    const file = path.join(dir, `${i + 1}.sql`);
    writeFileSync(file, `CREATE USER u${i + 1};\nCREATE DATABASE d${i + 1};\n`);
    return file;
  });
  return { dir, data: path.join(dir, 'data'), files };
}

/** Every file's changes are in the catalog (read back by a plain, fast-disk dump). */
async function expectEveryFile(data: string, env: NodeJS.ProcessEnv = ENV, keyArgs: string[] = []) {
  const dump = await cli(['dump', '--data', data, ...keyArgs], '', { env });
  expect(dump.code).toBe(0);
  for (let i = 1; i <= FILES; i++) {
    expect(dump.stdout).toMatch(new RegExp(`^CREATE USER u${i} `, 'm'));
    expect(dump.stdout).toMatch(new RegExp(`^CREATE DATABASE d${i}\\b`, 'm'));
  }
}

const lockGone = (data: string) => expect(existsSync(path.join(data, 'portcullis.pid'))).toBe(false);

describe('offline commands on a slow disk', () => {
  it('apply --data lives until every file is committed, prints its summary and releases the lock', async () => {
    const { dir, data, files } = setup();
    const slow = slowDisk(dir);
    const r = await cli(['apply', '--data', data, ...files], '', { env: slow.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^applied 4 files, 8 statements in \d+\.\d\d s\n$/);
    expect(r.stderr).toBe('');
    lockGone(data);
    await expectEveryFile(data);
    // The commits did go to the flusher thread (what the slow disk is here for).
    expect(slow.threadFlushes()).toBeGreaterThan(0);
  });

  it('a command left with nothing to wait for before it finished exits 2 and says so, never 0', async () => {
    const { dir, data, files } = setup();
    const slow = slowDisk(dir);
    // As before the flusher held the process: a thread that cannot keep it alive.
    const noRef = "--import=data:text/javascript,import{Worker}from'node:worker_threads';Worker.prototype.ref=function(){}";
    const r = await cli(['apply', '--data', data, ...files], '', { env: { ...slow.env, NODE_OPTIONS: `${slow.env.NODE_OPTIONS} ${noRef}` } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('portcullis: internal error: "apply" stopped before it finished (nothing left to wait for); its work may be incomplete\n');
  });

  it('dump --data of a new data directory (its first commit) finishes and releases the lock', async () => {
    const { dir, data } = setup();
    const r = await cli(['dump', '--data', data], '', { env: slowDisk(dir).env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALTER USER admin WITH PASSWORD /m);
    lockGone(data);
  });

  it('compact, rekey and dump --data finish, print their summary and release the lock', async () => {
    const { dir, data, files } = setup();
    expect((await cli(['apply', '--data', data, ...files], '', { env: ENV })).code).toBe(0);
    const slow = slowDisk(dir);

    const compact = await cli(['compact', '--data', data], '', { env: slow.env });
    expect(compact.code).toBe(0);
    expect(compact.stdout).toMatch(/^compacted .*: log of \d+ bytes replaced by a snapshot of \d+ bytes\n$/);
    lockGone(data);
    await expectEveryFile(data);

    const key = path.join(dir, 'key');
    writeFileSync(key, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    const rekey = await cli(['rekey', '--data', data, '--new-key-file', key], '', { env: slow.env });
    expect(rekey.code).toBe(0);
    expect(rekey.stdout).toMatch(/^rekeyed .*: key id none \(plaintext\) → [0-9a-f]+; start the server with the new key file\n$/);
    lockGone(data);
    await expectEveryFile(data, ENV, ['--encryption-key-file', key]);

    const dump = await cli(['dump', '--data', data, '--encryption-key-file', key], '', { env: slow.env });
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/^CREATE USER u4 /m);
    lockGone(data);
  });
});
