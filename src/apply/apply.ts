import { readFileSync } from 'node:fs';
import { parse, WIDEST_PARSE_LIMITS } from '../../grammar/index.js';
import type { SqlConnection } from '../client/connection.js';
import { PgError, type ErrorFields } from '../errors/pg-error.js';
import { formatTable } from '../psql/print.js';
import { filePosition, readScript, type ScriptItem } from '../psql/script.js';
import { parseSql, postgresParser, statementsOf } from '../dataplane/pg-parser.js';

/**
 * `portcullis apply FILE...`: each file in one transaction, all of it or none of it, in
 * the order given. A file may mix the admin language and SQL for the data plane (a
 * migration: CREATE TABLE, CREATE RLS POLICY, GRANT): on a server with a data plane both
 * commit together (docs/data-plane.md "The commit protocol"). Files are cut into statements as psql would cut them, so a file that
 * works with `psql -1 -f` works here; statements run one at a time so a failure can name
 * its file, line and column.
 */
export interface ApplyOptions {
  dryRun: boolean;
  /** Results (a new API key's one-time secret, SHOW output) as psql tables. */
  out: (s: string) => void;
  /** Notices and the progress bar. */
  err: (s: string) => void;
  /** Draw a progress bar (a terminal, and a large file). */
  progress: boolean;
}

export interface ApplySummary {
  files: number;
  statements: number;
  seconds: number;
}

/** A failure, already worded `file:line:column: SQLSTATE message` with its detail and hint. */
export class ApplyFailed extends Error {}

type Query = Extract<ScriptItem, { kind: 'query' }>;

const PROGRESS_FROM = 1000; // statements: smaller files finish before a bar would help

export async function applyFiles(conn: SqlConnection, files: string[], opts: ApplyOptions): Promise<ApplySummary> {
  const started = performance.now();
  let statements = 0;
  for (const file of files) statements += await applyFile(conn, file, opts);
  return { files: files.length, statements, seconds: (performance.now() - started) / 1000 };
}

async function applyFile(conn: SqlConnection, path: string, opts: ApplyOptions): Promise<number> {
  // `-`: standard input, named as psql names it in messages.
  const file = path === '-' ? '<stdin>' : path;
  const queries = await checkFile(file, path === '-' ? await readStdin() : readFileSync(path, 'utf8'));
  const bar = opts.progress && queries.length >= PROGRESS_FROM ? progressBar(file, queries.length, opts.err) : null;
  const begin = await conn.query('BEGIN');
  if (begin.error) throw new ApplyFailed(`${file}: ${begin.error.code} ${begin.error.message}`);
  for (let i = 0; i < queries.length; i++) {
    const q = queries[i]!;
    const r = await conn.query(q.sql);
    for (const n of r.notices) opts.err(`${file}:${q.line}: ${n.severity}:  ${n.message}\n`);
    if (r.error) {
      bar?.done();
      await conn.query('ROLLBACK');
      throw new ApplyFailed(describe(file, q, r.error));
    }
    for (const res of r.results) if (res.columns) opts.out(formatTable(res));
    bar?.update(i + 1);
  }
  bar?.done();
  const end = await conn.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
  if (end.error) throw new ApplyFailed(`${file}: ${end.error.code} ${end.error.message} (nothing of this file was applied)`);
  return queries.length;
}

/** All of standard input (a pipe may be non-blocking: read as a stream, never with readFileSync(0), which fails with EAGAIN). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The file's statements, or why it cannot be applied — before anything is sent: a syntax
 * error, a psql meta-command, or transaction control (the file already is one transaction;
 * a COMMIT inside it would break that promise).
 */
async function checkFile(file: string, text: string): Promise<Query[]> {
  const queries: Query[] = [];
  for (const item of readScript(text)) {
    if (item.kind === 'meta') {
      throw new ApplyFailed(`${file}:${item.line}:1: 0A000 psql meta-command \\${item.name} is not supported by apply\nHINT:  Run the file with psql, or remove the meta-command.`);
    }
    if (item.kind !== 'query') continue;
    let statements;
    try {
      // The server applies its own limits; here only what no server would accept fails.
      statements = parse(item.sql, WIDEST_PARSE_LIMITS);
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      // SQL for the data plane (CREATE TABLE, INSERT, ...): it commits with the file's
      // admin statements. PostgreSQL's parser tells it from a typo in either language.
      const sql = parseSql(await postgresParser(), item.sql);
      if (!sql) throw new ApplyFailed(describe(file, item, err));
      const control = statementsOf(sql).find((st) => st.kind === 'TransactionStmt');
      if (control) throw transactionControl(file, item, control.location + 1);
      queries.push(item);
      continue;
    }
    for (const st of statements) {
      if (st.command.type === 'Transaction') throw transactionControl(file, item, st.start + 1);
    }
    queries.push(item);
  }
  return queries;
}

function transactionControl(file: string, item: Query, position: number): ApplyFailed {
  const at = filePosition(item, position);
  return new ApplyFailed(
    `${file}:${at.line}:${at.column}: 0A000 transaction control is not allowed in a file given to apply\n` +
      'HINT:  apply runs each file in one transaction of its own: remove BEGIN, COMMIT and ROLLBACK.',
  );
}

function describe(file: string, q: Query, e: ErrorFields): string {
  const at = e.position ? filePosition(q, e.position) : { line: q.line, column: q.column };
  let s = `${file}:${at.line}:${at.column}: ${e.code} ${e.message}`;
  if (e.detail) s += `\nDETAIL:  ${e.detail}`;
  if (e.hint) s += `\nHINT:  ${e.hint}`;
  return s;
}

function progressBar(file: string, total: number, write: (s: string) => void) {
  const WIDTH = 30;
  let last = 0;
  const draw = (n: number) => {
    const filled = Math.round((n / total) * WIDTH);
    write(`\r[${'#'.repeat(filled)}${' '.repeat(WIDTH - filled)}] ${n}/${total} ${file}`);
  };
  draw(0);
  return {
    update(n: number) {
      const now = performance.now();
      if (now - last < 100 && n < total) return;
      last = now;
      draw(n);
    },
    done() {
      write('\r\x1b[K');
    },
  };
}
