import { openSync, closeSync, readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, ROOT, startTestServer } from '../support/server.js';

/**
 * pg_regress style: each fixtures/X.sql goes through real psql (`psql -X -a -q` reading the
 * file on stdin, stdout and stderr into one file) against a fresh in-memory server, and the
 * output must equal fixtures/X.out byte for byte. UPDATE_GOLDEN=1 rewrites the .out files.
 */
const FIXTURES = path.join(ROOT, 'fixtures');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.sql')).sort();

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function runPsql(port: number, sqlFile: string): Promise<string> {
  const outFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'golden-')), 'out');
  const out = openSync(outFile, 'w');
  const input = openSync(sqlFile, 'r');
  try {
    const child = spawn('psql', ['-X', '-a', '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'admin', '-d', 'default'], {
      env: { ...process.env, PGPASSWORD: ADMIN_PASSWORD, LANG: 'C.UTF-8', PGCLIENTENCODING: 'UTF8', PGTZ: 'UTC' },
      stdio: [input, out, out], // one file for both streams keeps their order, as pg_regress's 2>&1
    });
    await new Promise((resolve) => child.on('close', resolve));
  } finally {
    closeSync(out);
    closeSync(input);
  }
  return readFileSync(outFile, 'utf8');
}

describe('golden files through real psql', () => {
  it.each(files)('%s', async (file) => {
    // A fixed clock that ticks one second per reading, so timestamps in SHOW are stable.
    let now = Date.UTC(2026, 0, 1);
    // And a seeded generator, so key ids and secrets are the same on every run.
    let counter = 0;
    const random = (n: number) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i += 32) createHash('sha256').update(`golden:${counter++}`).digest().copy(out, i);
      return out;
    };
    server = await startTestServer({ clock: () => (now += 1000), random });
    const actual = await runPsql(server.port, path.join(FIXTURES, file));
    const expectedFile = path.join(FIXTURES, file.replace(/\.sql$/, '.out'));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(expectedFile, actual);
    expect(actual).toBe(readFileSync(expectedFile, 'utf8'));
  });
});
