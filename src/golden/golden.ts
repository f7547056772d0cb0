import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalConnection } from '../client/local-connection.js';
import { PgConnection } from '../client/pg-connection.js';
import type { SqlConnection } from '../client/connection.js';
import { Engine } from '../engine/engine.js';
import { deterministic, DETERMINISTIC_BOOTSTRAP_PASSWORD } from '../engine/deterministic.js';
import { runLikePsql } from '../psql/run-script.js';
import { MemoryStore } from '../store/store.js';
import { unifiedDiff } from './diff.js';

/**
 * pg_regress for portcullis: each X.sql runs on a fresh deterministic in-memory engine (or a
 * live server with --server) as `psql -X -a -q` would run it, and the output is compared
 * with X.out byte for byte.
 */
export interface GoldenOptions {
  update: boolean;
  jobs: number;
  /** Run against this live server instead of a fresh in-process engine. */
  server?: string;
  colour: boolean;
  write: (s: string) => void;
  /** As serve --deterministic: PORTCULLIS_BOOTSTRAP_PASSWORD, else the fixed default. */
  bootstrapPassword?: string;
}

export interface GoldenOutcome {
  file: string;
  status: 'passed' | 'failed' | 'updated' | 'created';
  diff?: string;
}

/** The .sql files named by `paths` (files, or directories searched one level deep). */
export function goldenFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths.length > 0 ? paths : [existsSync('fixtures') ? 'fixtures' : '.']) {
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) if (f.endsWith('.sql')) out.push(path.join(p, f));
    } else out.push(p);
  }
  return out;
}

/** A fresh engine as `serve --memory --deterministic` makes it, and a session as its superuser. */
export async function deterministicSession(bootstrapPassword?: string): Promise<{ conn: SqlConnection; close: () => Promise<void> }> {
  const det = deterministic();
  const engine = new Engine({
    store: new MemoryStore(),
    bootstrapUser: 'admin',
    bootstrapPassword: bootstrapPassword || DETERMINISTIC_BOOTSTRAP_PASSWORD,
    clock: det.clock,
    advanceClock: det.advanceClock,
    random: det.random,
  });
  await engine.open();
  const conn = LocalConnection.open(engine, 'admin', 'default');
  return {
    conn,
    close: async () => {
      await conn.close();
      await engine.close();
    },
  };
}

export async function runGoldenFile(sqlFile: string, opts: Pick<GoldenOptions, 'server' | 'bootstrapPassword'>): Promise<string> {
  const text = readFileSync(sqlFile, 'utf8');
  if (opts.server !== undefined) {
    const conn = await PgConnection.open(opts.server);
    try {
      return (await runLikePsql(text, conn)).output;
    } finally {
      await conn.close();
    }
  }
  const s = await deterministicSession(opts.bootstrapPassword);
  try {
    return (await runLikePsql(text, s.conn)).output;
  } finally {
    await s.close();
  }
}

export async function golden(files: string[], opts: GoldenOptions): Promise<GoldenOutcome[]> {
  const outcomes: GoldenOutcome[] = new Array(files.length);
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < files.length; k = next++) {
      const file = files[k]!;
      const actual = await runGoldenFile(file, opts);
      const expectedFile = file.replace(/\.sql$/, '') + '.out';
      const exists = existsSync(expectedFile);
      const expected = exists ? readFileSync(expectedFile, 'utf8') : '';
      if (exists && expected === actual) outcomes[k] = { file, status: 'passed' };
      else if (opts.update) {
        writeFileSync(expectedFile, actual);
        outcomes[k] = { file, status: exists ? 'updated' : 'created' };
      } else {
        outcomes[k] = { file, status: 'failed', diff: unifiedDiff(expected, actual, exists ? expectedFile : '/dev/null', `${file} (actual)`, opts.colour) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, files.length)) }, worker));
  return outcomes;
}
