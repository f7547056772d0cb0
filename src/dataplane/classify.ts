import { PgError } from '../errors/pg-error.js';
import { parseSql, scanTokens, statementsOf, walk, type LibPgQuery, type ParseResult, type Token } from './pg-parser.js';

/**
 * What forwarded SQL is, as PostgreSQL's own parser (libpg-query) sees it: never a regular
 * expression over SQL text. Two jobs, both before a byte reaches the data plane:
 *
 * - `substituteAuth`: `$auth.<var>` outside strings, comments and dollar-quoted bodies
 *   becomes a literal of this session's value (SPEC §10), found with PostgreSQL's scanner;
 * - `classify`: each statement's kind, whether it is DDL (the provisioner adopts what it
 *   created), whether it resets the connection's identity (DISCARD ALL), and the refusals:
 *   top-level statements that would leave the session's identity or change what the
 *   catalog alone decides (roles, grants, policies, row security, ownership), refused with
 *   42501 here, because on the embedded plane the connection underneath is a superuser
 *   (DATA-PLANE-NOTES) and "PostgreSQL refuses it itself" would depend on SET ROLE alone.
 *
 * Code inside a function body or a DO block is not visible to any parser of ours: the
 * design relies on PUBLIC lacking USAGE on the languages and EXECUTE on set_config (the
 * provisioner's part), so that such code cannot be created by a principal at all.
 */

/** A session's `$auth.*` values, as the forwarder reads them. */
export interface AuthSource {
  /** A variable's value; null: the session does not have it; undefined: no such variable. */
  variable(name: string): string | readonly string[] | null | undefined;
  /** A claim of a token login (`$auth.claims.<name>`); undefined: not there. */
  claim(name: string): string | undefined;
}

/** One replacement made in the text, in UTF-8 bytes of the original. */
export interface Edit {
  at: number;
  removed: number;
  inserted: number;
}

export interface Substituted {
  sql: string;
  edits: Edit[];
}

/** Identifier or keyword token text (the scanner's own token, not SQL text). */
const WORD = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*$/;

function wordValue(t: Token | undefined): string | null {
  if (!t) return null;
  if (t.text.length >= 2 && t.text.startsWith('"') && t.text.endsWith('"')) return t.text.slice(1, -1).replaceAll('""', '"');
  return WORD.test(t.text) ? t.text.toLowerCase() : null;
}

const adjacent = (a: Token | undefined, b: Token | undefined): boolean => a !== undefined && b !== undefined && a.end === b.start;

/**
 * `sql` with every `$auth.<var>` (and `$auth.claims.<name>`) replaced by a literal of the
 * session's value: an unknown-typed string literal, so `int_col = $auth.id` types itself as
 * PostgreSQL types `int_col = '42'`; a list as an array literal (`'{"a","b"}'`); a variable
 * the session does not have as NULL. An unknown variable is 42704, as in the admin
 * language. The scanner sees `$auth.id` as the tokens `$`, `auth`, `.`, `id`, touching:
 * anything else (spaces between them, `$auth` alone) is left for PostgreSQL to refuse.
 * Text the scanner refuses (an unterminated string) is returned unchanged.
 */
export function substituteAuth(pg: LibPgQuery, sql: string, auth: AuthSource): Substituted {
  if (!sql.includes('$')) return { sql, edits: [] };
  const tokens = scanTokens(pg, sql);
  if (!tokens) return { sql, edits: [] };
  const bytes = Buffer.from(sql, 'utf8');
  const parts: Buffer[] = [];
  const edits: Edit[] = [];
  let from = 0;
  for (let i = 0; i < tokens.length; i++) {
    const dollar = tokens[i]!;
    if (dollar.text !== '$') continue;
    const head = tokens[i + 1];
    const dot = tokens[i + 2];
    const name = tokens[i + 3];
    if (!adjacent(dollar, head) || wordValue(head) !== 'auth' || head!.text.startsWith('"')) continue;
    if (!adjacent(head, dot) || dot!.text !== '.' || !adjacent(dot, name)) continue;
    const variable = wordValue(name);
    if (variable === null) continue;
    let last = name!;
    let value: string | readonly string[] | null | undefined;
    let shown = `$auth.${variable}`;
    const dot2 = tokens[i + 4];
    const claim = tokens[i + 5];
    if (variable === 'claims' && adjacent(name, dot2) && dot2!.text === '.' && adjacent(dot2, claim) && wordValue(claim) !== null) {
      const c = wordValue(claim)!;
      value = auth.claim(c) ?? null;
      last = claim!;
      shown = `$auth.claims.${c}`;
    } else {
      value = auth.variable(variable);
      if (value === undefined) {
        throw new PgError('undefined_object', `$auth variable "${shown}" does not exist`, {
          position: characterPosition(bytes, dollar.start),
          hint: 'SHOW AUTH lists the variables of this session.',
        });
      }
    }
    const literal = Buffer.from(sqlLiteral(value), 'utf8');
    parts.push(bytes.subarray(from, dollar.start), literal);
    edits.push({ at: dollar.start, removed: last.end - dollar.start, inserted: literal.length });
    from = last.end;
    i += last === claim ? 5 : 3;
  }
  if (edits.length === 0) return { sql, edits };
  parts.push(bytes.subarray(from));
  return { sql: Buffer.concat(parts).toString('utf8'), edits };
}

/**
 * A string literal PostgreSQL reads the same whatever `standard_conforming_strings` says:
 * plain `'...'` when there is no backslash, else the escape form `E'...'`.
 */
export function sqlLiteral(value: string | readonly string[] | null): string {
  if (value === null) return 'NULL';
  const text = typeof value === 'string' ? value : arrayLiteral(value);
  if (!text.includes('\\')) return `'${text.replaceAll("'", "''")}'`;
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/**
 * PostgreSQL's array input syntax, elements quoted where array_out quotes them (empty, NULL,
 * or holding braces, quotes, commas, backslashes or white space), so the text reads as
 * PostgreSQL would print the array.
 */
function arrayLiteral(items: readonly string[]): string {
  return `{${items.map((s) => (needsQuotes(s) ? `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : s)).join(',')}}`;
}

function needsQuotes(s: string): boolean {
  if (s === '' || s.toLowerCase() === 'null') return true;
  for (const c of s) if ('{}",\\ \t\n\r\v\f'.includes(c)) return true;
  return false;
}

/**
 * Maps a 1-based character position in the text PostgreSQL ran (after substitution) back
 * to the client's text, so psql's caret points at what the client wrote.
 */
export function originalPosition(original: string, substituted: string, edits: readonly Edit[], position: number): number {
  if (edits.length === 0) return position;
  // Character position → byte offset in the substituted text.
  const b = Buffer.byteLength(Array.from(substituted).slice(0, Math.max(0, position - 1)).join(''), 'utf8');
  let shift = 0;
  let at: number | null = null;
  for (const e of edits) {
    const start = e.at + shift;
    if (b < start) break;
    if (b < start + e.inserted) {
      at = e.at; // inside a replacement: the `$` it replaced
      break;
    }
    shift += e.inserted - e.removed;
  }
  return characterPosition(Buffer.from(original, 'utf8'), at ?? b - shift);
}

function characterPosition(bytes: Buffer, byteOffset: number): number {
  return Array.from(bytes.subarray(0, byteOffset).toString('utf8')).length + 1;
}

// ---- classification ----------------------------------------------------------------

export interface StatementInfo {
  /** The parse tree's node type: SelectStmt, InsertStmt, CreateStmt, ... */
  kind: string;
  /**
   * Creates, alters or drops an object: the provisioner adopts what the role now owns. Also
   * ROLLBACK TO SAVEPOINT: it can undo an adoption that ran inside the block after a
   * savepoint taken behind the DDL (`CREATE TABLE t ...; SAVEPOINT s` in one message, then
   * `ROLLBACK TO s`), leaving the object the principal's (and a waiting policy not
   * installed); so an adoption pass follows it too (a few milliseconds, on an error path).
   */
  ddl: boolean;
  /** DISCARD ALL: PostgreSQL ends SET ROLE with it; the identity is applied again after it. */
  resetsIdentity: boolean;
  /** With `pooled`: the session state it leaves on the connection (for messages), if any. */
  sessionState?: string;
  /** UTF-8 byte range of the statement in the text. */
  start: number;
  end: number;
}

/** Statements that create, alter or drop objects (PostgreSQL's utility statements of DDL). */
const DDL = new Set([
  'CreateStmt',
  'CreateTableAsStmt',
  'ViewStmt',
  'IndexStmt',
  'CreateSeqStmt',
  'AlterSeqStmt',
  'AlterTableStmt',
  'RenameStmt',
  'DropStmt',
  'CompositeTypeStmt',
  'CreateEnumStmt',
  'AlterEnumStmt',
  'CreateRangeStmt',
  'CreateDomainStmt',
  'AlterDomainStmt',
  'DefineStmt',
  'CreateFunctionStmt',
  'AlterFunctionStmt',
  'CreateSchemaStmt',
  'CreateTrigStmt',
  'CreateStatsStmt',
  'CreateForeignTableStmt',
  'CreateCastStmt',
  'CreateConversionStmt',
  'CreateOpClassStmt',
  'CreateOpFamilyStmt',
  'AlterObjectSchemaStmt',
  'RefreshMatViewStmt',
  'CreatedbStmt',
  'DropdbStmt',
  'TruncateStmt',
]);

/**
 * Statements refused before they reach the data plane, and why. The identity statements
 * are what DATA-PLANE-NOTES lists as leaving SET ROLE; the rest would change what only
 * the admin language may change (SPEC §10 "No way around the catalog"). A principal owns
 * an object it creates until the provisioner adopts it, after the statement: refusing
 * these here closes that window too (`CREATE TABLE t ...; GRANT ALL ON t TO PUBLIC` in one
 * message).
 */
const REFUSED: Record<string, { what: string; hint?: string }> = {
  AlterSystemStmt: { what: 'ALTER SYSTEM' },
  LoadStmt: { what: 'LOAD' },
  // A trusted extension's script runs as the bootstrap superuser.
  CreateExtensionStmt: { what: 'CREATE EXTENSION' },
  AlterExtensionStmt: { what: 'ALTER EXTENSION' },
  AlterExtensionContentsStmt: { what: 'ALTER EXTENSION' },
  GrantStmt: { what: 'GRANT and REVOKE of PostgreSQL privileges', hint: 'Use the admin language: GRANT READ, WRITE ON DATABASE ... TO ... (docs/statements.md).' },
  GrantRoleStmt: { what: 'GRANT and REVOKE of PostgreSQL roles', hint: 'Use the admin language: GRANT role TO user (docs/statements.md).' },
  CreateRoleStmt: { what: 'CREATE ROLE', hint: 'Use the admin language: CREATE USER, CREATE ROLE (docs/statements.md).' },
  AlterRoleStmt: { what: 'ALTER ROLE', hint: 'Use the admin language: ALTER USER (docs/statements.md).' },
  AlterRoleSetStmt: { what: 'ALTER ROLE ... SET' },
  DropRoleStmt: { what: 'DROP ROLE', hint: 'Use the admin language: DROP USER, DROP ROLE (docs/statements.md).' },
  CreatePolicyStmt: { what: 'CREATE POLICY', hint: 'Use the admin language: CREATE RLS POLICY name ON db.table FOR READ USING (...) (docs/statements.md).' },
  AlterPolicyStmt: { what: 'ALTER POLICY', hint: 'Use the admin language: DROP RLS POLICY and CREATE RLS POLICY (docs/statements.md).' },
  AlterOwnerStmt: { what: 'ALTER ... OWNER TO' },
  ReassignOwnedStmt: { what: 'REASSIGN OWNED' },
  DropOwnedStmt: { what: 'DROP OWNED' },
  AlterDefaultPrivilegesStmt: { what: 'ALTER DEFAULT PRIVILEGES' },
  // A rule's actions run with the rights of its table's owner, which is portcullis's.
  RuleStmt: { what: 'CREATE RULE' },
  CreateEventTrigStmt: { what: 'CREATE EVENT TRIGGER' },
  AlterEventTrigStmt: { what: 'ALTER EVENT TRIGGER' },
};

/**
 * PostgreSQL's large-object functions. A large object belongs to the role that created it,
 * and a profile role is shared by every principal with the same privileges: one principal's
 * large object would be readable and writable by the others, outside any policy (and the
 * next adoption would give it to the owner role, where no one could read it).
 */
const LARGE_OBJECT_FUNCTIONS = new Set([
  'lo_creat',
  'lo_create',
  'lo_from_bytea',
  'lo_import',
  'lo_export',
  'lo_open',
  'lo_close',
  'loread',
  'lowrite',
  'lo_get',
  'lo_put',
  'lo_lseek',
  'lo_lseek64',
  'lo_tell',
  'lo_tell64',
  'lo_truncate',
  'lo_truncate64',
  'lo_unlink',
]);

const ROW_SECURITY_COMMANDS: Record<string, string> = {
  AT_EnableRowSecurity: 'ALTER TABLE ... ENABLE ROW LEVEL SECURITY',
  AT_DisableRowSecurity: 'ALTER TABLE ... DISABLE ROW LEVEL SECURITY',
  AT_ForceRowSecurity: 'ALTER TABLE ... FORCE ROW LEVEL SECURITY',
  AT_NoForceRowSecurity: 'ALTER TABLE ... NO FORCE ROW LEVEL SECURITY',
  AT_ChangeOwner: 'ALTER TABLE ... OWNER TO',
};

/** Settings a statement may not SET or RESET (lower case): they are, or hide, the identity. */
function reservedSetting(name: string): boolean {
  const n = name.toLowerCase();
  return (
    n === 'role' ||
    n === 'session_authorization' ||
    // The forwarder reads SQL with standard strings: with them off, PostgreSQL would see
    // a backslash-escaped quote where this parser sees the end of a string.
    n === 'standard_conforming_strings' ||
    n.startsWith('auth.') ||
    n.startsWith('portcullis.') ||
    n === '$auth' ||
    n.startsWith('$auth.')
  );
}

function refused(what: string, position: number | undefined, hint?: string): PgError {
  return new PgError('insufficient_privilege', `${what} is not allowed through portcullis`, {
    detail: 'Statements that change identity, roles, grants, policies or ownership in the data plane are the admin language\'s alone.',
    ...(hint ? { hint } : {}),
    ...(position === undefined ? {} : { position }),
  });
}

export interface Classified {
  statements: StatementInfo[];
}

export interface ClassifyOptions {
  /**
   * Sessions take turns on one connection (the embedded plane): what one session leaves on
   * the connection would reach the next, so statements that leave session state are 0A000.
   */
  sharedConnection?: boolean;
  /** Settings this data plane cannot survive (SET / RESET / set_config of them is 0A000). */
  forbiddenSettings?: readonly string[];
  /**
   * Transaction pooling (the upstream plane): statements that leave session state are
   * reported (`sessionState`), so the session can get a dedicated connection; session-level
   * SET counts too.
   */
  pooled?: boolean;
}

const SESSION_LOCKS = new Set(['pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared']);

/** CURSOR_OPT_HOLD (src/include/nodes/parsenodes.h). */
const CURSOR_OPT_HOLD = 0x0020;

function sessionStateRefused(what: string, at: number, hint: string): PgError {
  return new PgError('feature_not_supported', `${what} are not supported on the embedded data plane`, {
    detail: 'Sessions take turns on one PGlite connection: what a session leaves on it would reach the next session.',
    hint: `${hint} An upstream PostgreSQL (--upstream) gives each session a connection of its own.`,
    position: at,
  });
}

/** What a statement would leave on the connection beyond its transaction, where, and what to use instead. */
interface SessionStateUse {
  what: string;
  at: number;
  hint: string;
}

/** Statements that leave state on the connection beyond their transaction (SPEC §10 "Pooling"). */
function sessionStateOf(kind: string, node: Record<string, unknown>, at: number, bytes: Buffer): SessionStateUse | null {
  if (kind === 'PrepareStmt') return { what: 'SQL prepared statements (PREPARE)', at, hint: "Use your driver's prepared statements (the extended protocol)." };
  if (kind === 'ListenStmt') return { what: 'notifications (LISTEN)', at, hint: '' };
  if (kind === 'DeclareCursorStmt' && typeof node.options === 'number' && (node.options & CURSOR_OPT_HOLD) !== 0) {
    return { what: 'cursors WITH HOLD', at, hint: 'Declare the cursor without HOLD, inside a transaction block.' };
  }
  let found: SessionStateUse | null = null;
  walk(node, (key, value) => {
    if (found) return;
    const v = value as { relpersistence?: string; funcname?: { String?: { sval?: string } }[]; location?: number };
    if (v.relpersistence === 't') found = { what: 'temporary tables, views and sequences', at, hint: 'Use a regular table.' };
    else if (key === 'FuncCall' && SESSION_LOCKS.has(v.funcname?.at(-1)?.String?.sval ?? '')) {
      found = { what: 'session-level advisory locks', at: v.location === undefined ? at : characterPosition(bytes, v.location), hint: 'Use pg_advisory_xact_lock(), released at the end of the transaction.' };
    }
  });
  return found;
}

/** SET of a setting for the rest of the session (not SET LOCAL, not SET TRANSACTION): state a transaction pool cannot carry. */
function sessionSetting(kind: string, node: Record<string, unknown>, at: number): SessionStateUse | null {
  if (kind !== 'VariableSetStmt' || node.is_local === true) return null;
  if (node.kind !== 'VAR_SET_VALUE' && node.kind !== 'VAR_SET_DEFAULT' && node.kind !== 'VAR_SET_CURRENT') return null;
  return { what: 'session-level settings (SET)', at, hint: 'Use SET LOCAL inside a transaction block, or the setting in the connection string.' };
}

/**
 * PostgreSQL's view of `sql` (already substituted): its statements, or null when its parser
 * refuses the text (a syntax error: the caller decides what to say). Throws the refusal
 * (42501) of the first statement that may not be forwarded, positioned at it.
 */
export function classify(pg: LibPgQuery, sql: string, opts: ClassifyOptions = {}, parsed: ParseResult | null = parseSql(pg, sql)): Classified | null {
  if (!parsed) return null;
  const bytes = Buffer.from(sql, 'utf8');
  const out: StatementInfo[] = [];
  for (const { kind, node, location: start, length } of statementsOf(parsed)) {
    const end = length ? start + length : bytes.length;
    // The statement's first token, for positions of refusals that have no location of their own.
    const at = characterPosition(bytes, firstTokenAt(bytes, start));
    checkStatement(kind, node, at, bytes);
    let sessionState: string | undefined;
    if (opts.sharedConnection || opts.pooled) {
      const use = sessionStateOf(kind, node, at, bytes) ?? (opts.pooled ? sessionSetting(kind, node, at) : null);
      if (use && opts.sharedConnection) throw sessionStateRefused(use.what, use.at, use.hint);
      if (use) sessionState = use.what;
    }
    if (opts.forbiddenSettings?.length) checkForbiddenSettings(kind, node, at, bytes, opts.forbiddenSettings);
    const intoTable = kind === 'SelectStmt' && node.intoClause !== undefined;
    const rollbackTo = kind === 'TransactionStmt' && node.kind === 'TRANS_STMT_ROLLBACK_TO';
    out.push({
      kind,
      ddl: DDL.has(kind) || intoTable || rollbackTo,
      resetsIdentity: kind === 'DiscardStmt' && node.target === 'DISCARD_ALL',
      ...(sessionState === undefined ? {} : { sessionState }),
      start,
      end,
    });
  }
  return { statements: out };
}

function firstTokenAt(bytes: Buffer, start: number): number {
  let i = start;
  while (i < bytes.length && (bytes[i] === 0x20 || (bytes[i]! >= 0x09 && bytes[i]! <= 0x0d))) i++;
  return i;
}

function checkStatement(kind: string, node: Record<string, unknown>, at: number, bytes: Buffer): void {
  const r = REFUSED[kind];
  if (r) throw refused(r.what, at, r.hint);
  switch (kind) {
    case 'VariableSetStmt': {
      const name = typeof node.name === 'string' ? node.name : '';
      if (node.kind !== 'VAR_RESET_ALL' && reservedSetting(name)) {
        const verb = node.kind === 'VAR_RESET' ? 'RESET' : 'SET';
        const shown = name === 'session_authorization' ? 'SESSION AUTHORIZATION' : name === 'role' ? 'ROLE' : name;
        throw refused(`${verb} ${shown}`, at, name === 'role' || name === 'session_authorization' ? 'The session runs with its principal\'s privileges; SET SESSION AUTHORIZATION is an admin statement (superusers).' : undefined);
      }
      break;
    }
    case 'AlterTableStmt':
      for (const c of (node.cmds as { AlterTableCmd?: { subtype?: string } }[] | undefined) ?? []) {
        const what = ROW_SECURITY_COMMANDS[c.AlterTableCmd?.subtype ?? ''];
        if (what) throw refused(what, at, what.includes('ROW LEVEL') ? 'Row-level security follows the catalog: CREATE RLS POLICY and DROP RLS POLICY (docs/statements.md).' : undefined);
      }
      break;
    case 'DropStmt':
      if (node.removeType === 'OBJECT_POLICY') throw refused('DROP POLICY', at, 'Use the admin language: DROP RLS POLICY (docs/statements.md).');
      break;
  }
  // set_config() anywhere in the statement: its name decides, and a name that is not a
  // constant cannot be judged, so it is refused too. Large objects likewise, wherever they
  // are called (a view's or a default's call runs later, but is written here).
  walk(node, (key, value) => {
    if (key !== 'FuncCall') return;
    const call = value as { funcname?: { String?: { sval?: string } }[]; args?: unknown[]; location?: number };
    const fn = call.funcname?.at(-1)?.String?.sval ?? '';
    if (LARGE_OBJECT_FUNCTIONS.has(fn)) {
      throw refused(`${fn}() of large objects`, call.location === undefined ? at : characterPosition(bytes, call.location), 'Store bytes in a bytea column: its rows are under the catalog\'s privileges and policies.');
    }
    if (fn !== 'set_config') return;
    const first = call.args?.[0] as { A_Const?: { sval?: { sval?: string } } } | undefined;
    const name = first?.A_Const?.sval?.sval;
    const position = call.location === undefined ? at : characterPosition(bytes, call.location);
    if (name === undefined) throw refused('set_config() with a computed setting name', position);
    if (reservedSetting(name)) throw refused(`set_config('${name}', ...)`, position, name.startsWith('auth.') ? '$auth.* values come from the login: they are read with $auth.<name> or portcullis.auth(name).' : undefined);
  });
}

function checkForbiddenSettings(kind: string, node: Record<string, unknown>, at: number, bytes: Buffer, names: readonly string[]): void {
  const refuse = (name: string, position: number) =>
    new PgError('feature_not_supported', `parameter "${name}" cannot be set on the embedded data plane`, {
      detail: 'When this timeout fires, the embedded PostgreSQL (PGlite) stops answering every session.',
      hint: 'An upstream PostgreSQL (--upstream) takes it.',
      position,
    });
  if (kind === 'VariableSetStmt' && typeof node.name === 'string' && names.includes(node.name.toLowerCase())) throw refuse(node.name, at);
  walk(node, (key, value) => {
    if (key !== 'FuncCall') return;
    const call = value as { funcname?: { String?: { sval?: string } }[]; args?: unknown[]; location?: number };
    if (call.funcname?.at(-1)?.String?.sval !== 'set_config') return;
    const name = (call.args?.[0] as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const?.sval?.sval;
    if (name && names.includes(name.toLowerCase())) throw refuse(name, call.location === undefined ? at : characterPosition(bytes, call.location));
  });
}

