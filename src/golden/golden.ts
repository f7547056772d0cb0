import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DETERMINISTIC_BOOTSTRAP_PASSWORD } from '../engine/deterministic.js';
import { parsePgUrl, type PgTarget } from '../dataplane/pg-raw.js';
import { pgpassPassword } from '../client/pgpass.js';
import { runLikePsql, type ScriptRun } from '../psql/run-script.js';
import { PsqlWire } from '../psql/wire.js';
import { startServer } from '../server.js';
import type { DataPlane } from '../dataplane/types.js';
import { unifiedDiff } from './diff.js';
import { GoldenPlanes } from './planes.js';

/**
 * pg_regress for portcullis: each X.sql runs as `psql -X -a -q < X.sql` would run it, in X.sql's
 * directory (where \i and \ir find the files it includes), against a
 * fresh `portcullis serve --memory --deterministic` — a fresh catalog and a fresh data plane
 * of its own (embedded PGlite in memory, or databases of its own on an upstream PostgreSQL)
 * — started in this process and reached over pgwire, so the rows, policies and identities
 * of the data plane go through the same code as any client's; or against a live server
 * (--server). The output is compared with X.out byte for byte.
 */
export interface GoldenOptions {
  update: boolean;
  jobs: number;
  /** Run against this live server instead of a fresh in-process one. */
  server?: string;
  /** The fresh servers' data plane: an upstream PostgreSQL (each file in databases of its own), else embedded. */
  upstream?: string;
  colour: boolean;
  write: (s: string) => void;
  /** As serve --deterministic: PORTCULLIS_BOOTSTRAP_PASSWORD, else the fixed default. */
  bootstrapPassword?: string;
}

export interface GoldenOutcome {
  file: string;
  status: 'passed' | 'failed' | 'updated' | 'created';
  diff?: string;
  /** What the file's server logged (data-plane warnings, internal errors' causes): shown with a failure. */
  log?: string[];
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

/** The bootstrap superuser of a fresh server, as `serve --deterministic` makes it. */
const BOOTSTRAP_USER = 'admin';

/**
 * Runs one script on a fresh deterministic server of this process, on the data plane
 * `plane` (which the caller made and closes); `dir` is where \i and \ir find files (psql's
 * working directory: the script's own).
 */
export async function runOnFreshServer(text: string, plane: DataPlane, bootstrapPassword?: string, log?: (line: string) => void, dir?: string): Promise<ScriptRun> {
  const password = bootstrapPassword || DETERMINISTIC_BOOTSTRAP_PASSWORD;
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    httpPort: null,
    dataDir: null,
    bootstrapUser: BOOTSTRAP_USER,
    bootstrapPassword: password,
    deterministic: true,
    dataPlane: plane,
    log: log ?? (() => {}),
  });
  try {
    const target: PgTarget = {
      host: '127.0.0.1',
      port: server.port,
      user: BOOTSTRAP_USER,
      password,
      database: 'default',
      sslmode: 'disable',
      sslrootcert: null,
      connectTimeoutMs: 10_000,
    };
    return await runLikePsql(text, { user: BOOTSTRAP_USER, connect: (db) => PsqlWire.connect(target, db) }, dir);
  } finally {
    await server.close();
  }
}

/**
 * A live server's address: the URL, its missing parts from the PG* variables as psql takes
 * them, the password from PGPASSWORD or ~/.pgpass.
 */
export function serverTarget(url: string | undefined): PgTarget {
  const env = process.env;
  const u =
    url ??
    `postgres://${encodeURIComponent(env.PGUSER || os.userInfo().username)}@${env.PGHOST || '127.0.0.1'}:${env.PGPORT || '6432'}/${encodeURIComponent(env.PGDATABASE || 'default')}${env.PGSSLMODE ? `?sslmode=${env.PGSSLMODE}` : ''}`;
  // A URL without a user takes PGUSER's, or the OS user's, as libpq does.
  const parsed = new URL(u);
  if (parsed.username === '') parsed.username = encodeURIComponent(env.PGUSER || os.userInfo().username);
  const t = parsePgUrl(parsed.toString());
  if (t.password === null) t.password = env.PGPASSWORD ?? pgpassPassword(t.host, t.port, t.database, t.user, (w) => process.stderr.write(`warning: ${w}\n`)) ?? null;
  return t;
}

export async function runGoldenFile(sqlFile: string, opts: Pick<GoldenOptions, 'server' | 'bootstrapPassword'>, planes: GoldenPlanes | null): Promise<{ output: string; log: string[] }> {
  const text = readFileSync(sqlFile, 'utf8');
  if (planes === null) {
    const target = serverTarget(opts.server);
    return { output: (await runLikePsql(text, { user: target.user, connect: (db) => PsqlWire.connect(target, db) }, path.dirname(path.resolve(sqlFile)))).output, log: [] };
  }
  const log: string[] = [];
  const plane = await planes.open();
  try {
    return { output: (await runOnFreshServer(text, plane, opts.bootstrapPassword, (l) => log.push(l), path.dirname(path.resolve(sqlFile)))).output, log };
  } finally {
    await planes.close(plane);
  }
}

export async function golden(files: string[], opts: GoldenOptions): Promise<GoldenOutcome[]> {
  const outcomes: GoldenOutcome[] = new Array(files.length);
  const planes = opts.server !== undefined ? null : new GoldenPlanes(opts.upstream);
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < files.length; k = next++) {
      const file = files[k]!;
      const { output: actual, log } = await runGoldenFile(file, opts, planes);
      const expectedFile = file.replace(/\.sql$/, '') + '.out';
      const exists = existsSync(expectedFile);
      const expected = exists ? readFileSync(expectedFile, 'utf8') : '';
      if (exists && expected === actual) outcomes[k] = { file, status: 'passed' };
      else if (opts.update) {
        writeFileSync(expectedFile, actual);
        outcomes[k] = { file, status: exists ? 'updated' : 'created' };
      } else {
        outcomes[k] = { file, status: 'failed', diff: unifiedDiff(expected, actual, exists ? expectedFile : '/dev/null', `${file} (actual)`, opts.colour), log };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, files.length)) }, worker));
  } finally {
    await planes?.shutdown();
  }
  return outcomes;
}
