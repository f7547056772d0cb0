import { parse as parseAdmin } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import { postgresParser, walk } from '../dataplane/pg-parser.js';
import { splitStatements } from './statement-split.js';

/**
 * SQL that is not the admin language: psql's \du, \l and \dt, `SELECT * FROM pg_roles`,
 * pgJDBC's DatabaseMetaData, drivers' pg_type look-ups. PostgreSQL's own parser
 * (libpg-query, PostgreSQL's parser compiled to WASM) tells such SQL from a typo: when the
 * admin grammar refuses a message and PostgreSQL's parser accepts it, it is SQL meant for
 * a data plane, which this server does not have, and the answer is 0A000 with a hint that
 * names the admin statement to use. When both refuse it, it is a syntax error, and the
 * admin grammar's 42601 (with its position) stands.
 */

type LibPgQuery = typeof import('libpg-query');

/**
 * Longer texts are not handed to PostgreSQL's parser: a tool's catalog query is a few
 * kilobytes, and parsing a 600 KB statement takes about a second of the event loop.
 */
const MAX_SQL_BYTES = 64 * 1024;

/**
 * The error for a message the admin grammar refused with `adminError` (a 42601): 0A000 when
 * PostgreSQL's parser accepts the message, or one of its statements that the admin grammar
 * does not; `adminError` otherwise. Either way nothing of the message runs.
 */
export async function refusal(text: string, adminError: PgError): Promise<PgError> {
  if (adminError.state !== 'syntax_error' || Buffer.byteLength(text) > MAX_SQL_BYTES) return adminError;
  const pg = await postgresParser();
  const whole = tryParse(pg, text);
  if (whole) return notAdminLanguage(text, whole, 0, firstTokenByte(pg, text, 0));
  // Admin statements and SQL in one message: PostgreSQL's lexer splits it (strings, comments
  // and dollar quotes hide semicolons), and the first statement that is not admin language
  // decides: SQL (0A000), or a syntax error in either language (the admin grammar's 42601).
  for (const piece of splitStatements(pg, text)) {
    if (isAdmin(piece.text)) continue;
    const sql = tryParse(pg, piece.text);
    return sql ? notAdminLanguage(text, sql, piece.byteOffset, firstTokenByte(pg, piece.text, piece.byteOffset)) : adminError;
  }
  return adminError;
}

type Parsed = ReturnType<LibPgQuery['parseSync']>;

function tryParse(pg: LibPgQuery, text: string): Parsed | null {
  try {
    const r = pg.parseSync(text);
    return r.stmts && r.stmts.length > 0 ? r : null;
  } catch {
    return null; // a syntax error for PostgreSQL too (or nesting too deep for its parser)
  }
}

function isAdmin(text: string): boolean {
  try {
    parseAdmin(text);
    return true;
  } catch {
    return false;
  }
}

/** Where the first token of `text` (at `byteOffset` in the message) starts, comments and spaces skipped by PostgreSQL's lexer. */
function firstTokenByte(pg: LibPgQuery, text: string, byteOffset: number): number {
  return byteOffset + (pg.scanSync(text).tokens[0]?.start ?? 0);
}

/** System catalogs and the admin statement that answers what a query of them asks. */
const CATALOG_HINTS: Record<string, string> = {
  pg_roles: 'SHOW USERS',
  pg_user: 'SHOW USERS',
  pg_authid: 'SHOW USERS',
  pg_shadow: 'SHOW USERS',
  pg_group: 'SHOW ROLES',
  pg_auth_members: 'SHOW GRANTS',
  pg_database: 'SHOW DATABASES',
  pg_stat_activity: 'SHOW AUTH',
};

const CATALOG_ORDER = Object.keys(CATALOG_HINTS);

/** Functions of PostgreSQL's catalog that point the same way. */
const FUNCTION_HINTS: Record<string, string> = {
  pg_get_userbyid: 'SHOW USERS',
  has_database_privilege: 'SHOW PERMISSIONS',
  has_table_privilege: 'SHOW PERMISSIONS',
  pg_has_role: 'SHOW GRANTS',
};

const GENERAL_HINT =
  'Use the admin language: SHOW USERS, SHOW ROLES, SHOW DATABASES, SHOW GRANTS, SHOW PERMISSIONS, SHOW AUTH, CREATE USER, GRANT ... (docs/statements.md).';

/**
 * 0A000 for `parsed` (SQL found at `byteOffset` in `text`, its first word at `startByte`),
 * pointing at the catalog it asked about.
 */
function notAdminLanguage(text: string, parsed: Parsed, byteOffset: number, startByte: number): PgError {
  // The catalog the query is most about: the first of CATALOG_HINTS' order it reads (psql's
  // \du reads pg_roles and, in a subquery, pg_auth_members), else a function of FUNCTION_HINTS.
  const found: { rank: number; hint: string; at: number }[] = [];
  walk(parsed, (key, node) => {
    if (key === 'RangeVar') {
      const rel = node as { schemaname?: string; relname?: string; location?: number };
      if (!rel.relname || (rel.schemaname !== undefined && rel.schemaname !== 'pg_catalog')) return;
      const rank = CATALOG_ORDER.indexOf(rel.relname);
      if (rank >= 0) found.push({ rank, hint: `${rel.relname} is a PostgreSQL catalog; here, ${CATALOG_HINTS[rel.relname]} answers that.`, at: rel.location ?? 0 });
    } else if (key === 'FuncCall') {
      const call = node as { funcname?: { String?: { sval?: string } }[]; location?: number };
      const name = call.funcname?.at(-1)?.String?.sval;
      const statement = name ? FUNCTION_HINTS[name] : undefined;
      if (statement) found.push({ rank: CATALOG_ORDER.length, hint: `${name}() reads PostgreSQL's catalog; here, ${statement} answers that.`, at: call.location ?? 0 });
    }
  });
  const best = found.reduce<(typeof found)[number] | null>((a, b) => (a === null || b.rank < a.rank ? b : a), null);
  // Without a catalog to point at, the statement's first word.
  const at = best ? byteOffset + best.at : startByte;
  return new PgError('feature_not_supported', 'portcullis answers only its admin language on this connection', {
    detail: 'This is SQL for PostgreSQL itself, and no data plane is configured to run it (the server runs with --data-plane off).',
    hint: best?.hint ?? GENERAL_HINT,
    position: characterPosition(text, at),
  });
}


/** libpg-query's locations are UTF-8 byte offsets; PostgreSQL's error positions count characters from 1. */
function characterPosition(text: string, byteOffset: number): number {
  const prefix = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  return Array.from(prefix).length + 1;
}
