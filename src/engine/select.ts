import type { AdminCommand, Expr } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Column, Execution } from '../wire/handler.js';
import { TypeOid } from '../wire/messages.js';
import { authValueText, isAuthVariable, LIST_VARIABLES, type AuthValues } from './auth-vars.js';
import { type StatementContext } from './statement-context.js';
import { rowsResult } from './results.js';
import { SERVER_VERSION } from './settings.js';
import { parseBigint, parseInteger, valueText } from './values.js';

type Select = Extract<AdminCommand, { type: 'Select' }>;

const FUNCTIONS: Record<string, { type: number; needsParens: boolean }> = {
  current_user: { type: TypeOid.text, needsParens: false },
  session_user: { type: TypeOid.text, needsParens: false },
  current_database: { type: TypeOid.text, needsParens: true },
  version: { type: TypeOid.text, needsParens: true },
  // asyncpg's pool runs it on every release: the admin language takes no advisory locks.
  pg_advisory_unlock_all: { type: TypeOid.void, needsParens: true },
  // SQLAlchemy asks at connect. The admin language has no schemas, and PostgreSQL answers
  // NULL when no schema on the search path exists.
  current_schema: { type: TypeOid.name, needsParens: true },
};

/**
 * PostgreSQL functions that tools call and only a data plane could answer (session and
 * server introspection): 0A000 saying so, not 42883 "does not exist".
 */
const DATA_PLANE_FUNCTIONS = new Set([
  'pg_backend_pid',
  'current_setting',
  'set_config',
  'current_schemas',
  'now',
  'txid_current',
  'pg_current_xact_id',
  'pg_is_in_recovery',
  'pg_postmaster_start_time',
  'inet_server_addr',
  'inet_server_port',
  'inet_client_addr',
  'pg_client_encoding',
  'pg_encoding_to_char',
]);

const CASTS: Record<string, number> = {
  text: TypeOid.text,
  varchar: TypeOid.text,
  name: TypeOid.text,
  int: TypeOid.int4,
  int4: TypeOid.int4,
  integer: TypeOid.int4,
  bigint: TypeOid.int8,
  int8: TypeOid.int8,
  bool: TypeOid.bool,
  boolean: TypeOid.bool,
};

function typeOf(e: Expr): number {
  switch (e.kind) {
    case 'value':
      if (e.value.kind === 'number') return /^-?\d+$/.test(e.value.value) ? TypeOid.int4 : TypeOid.text;
      if (e.value.kind === 'boolean') return TypeOid.bool;
      return TypeOid.text;
    case 'auth':
      return e.path[0] && LIST_VARIABLES.has(e.path[0]) && e.path.length === 1 ? TypeOid.textArray : TypeOid.text;
    case 'function':
      return FUNCTIONS[e.name]?.type ?? TypeOid.text;
    case 'cast':
      return CASTS[e.type] ?? TypeOid.text;
  }
}

/** PostgreSQL's column naming: the function or last name, `?column?` for a bare literal. */
function nameOf(e: Expr): string {
  switch (e.kind) {
    case 'value':
      return '?column?';
    case 'auth':
      return e.path[e.path.length - 1]!;
    case 'function':
      return e.name;
    case 'cast':
      return e.expr.kind === 'value' ? e.type : nameOf(e.expr);
  }
}

export function selectColumns(cmd: Select): Column[] {
  return cmd.items.map((it) => ({ name: it.alias ?? nameOf(it.expr), typeOid: typeOf(it.expr) }));
}

export function selectParamTypes(cmd: Select): [number, number][] {
  const out: [number, number][] = [];
  for (const it of cmd.items) {
    if (it.expr.kind === 'cast' && it.expr.expr.kind === 'value' && it.expr.expr.value.kind === 'param') {
      out.push([it.expr.expr.value.index, CASTS[it.expr.type] ?? TypeOid.text]);
    }
  }
  return out;
}

export function runSelect(cmd: Select, ctx: StatementContext): Execution {
  if (cmd.from) {
    throw new PgError('feature_not_supported', `SELECT ... FROM is not supported: portcullis has no relation "${cmd.from.value}"`, {
      position: cmd.from.position,
      hint: 'Use SHOW USERS, SHOW AUTH or SELECT $auth.<variable>.',
    });
  }
  let auth: AuthValues | null = null;
  const authValues = () => (auth ??= ctx.session.authValues(ctx.view, ctx.now));
  const row = cmd.items.map((it) => evaluate(it.expr, ctx, authValues));
  return rowsResult(selectColumns(cmd), [row][Symbol.iterator](), 'SELECT', true);
}

function evaluate(e: Expr, ctx: StatementContext, auth: () => AuthValues): string | null {
  switch (e.kind) {
    case 'value': {
      const v = valueText(e.value, ctx.params);
      if (e.value.kind === 'boolean') return v === 'true' ? 't' : 'f';
      return v;
    }
    case 'auth': {
      const [head, ...rest] = e.path;
      if (head === 'claims' && rest.length === 1) return auth().claims[rest[0]!] ?? null;
      if (!head || rest.length > 0 || !isAuthVariable(head)) {
        throw new PgError('undefined_object', `$auth variable "$auth.${e.path.join('.')}" does not exist`, {
          position: e.position,
          hint: 'SHOW AUTH lists the variables of this session.',
        });
      }
      return authValueText(auth()[head]);
    }
    case 'function': {
      const f = FUNCTIONS[e.name];
      if (!f && DATA_PLANE_FUNCTIONS.has(e.name)) {
        throw new PgError('feature_not_supported', 'portcullis answers only its admin language on this connection', {
          position: e.position,
          detail: `${e.name}() is PostgreSQL's, and no data plane is configured to run it.`,
          hint: 'The functions here are current_user, session_user, current_database(), current_schema() and version(); SHOW AUTH shows the session.',
        });
      }
      if (!f || f.needsParens !== e.call) {
        throw new PgError('undefined_function', `function ${e.name}() does not exist`, {
          position: e.position,
          hint: 'The functions are current_user, session_user, current_database() and version().',
        });
      }
      switch (e.name) {
        case 'current_user':
          return ctx.actor.name;
        case 'session_user':
          return ctx.session.sessionUserName;
        case 'current_database':
          return ctx.session.database;
        case 'pg_advisory_unlock_all':
          return '';
        case 'current_schema':
          return null;
        default:
          return `PostgreSQL ${SERVER_VERSION}`;
      }
    }
    case 'cast': {
      const v = evaluate(e.expr, ctx, auth);
      const target = CASTS[e.type];
      if (target === undefined) throw new PgError('undefined_object', `type "${e.type}" does not exist`, { position: e.position });
      if (v === null) return null;
      if (target === TypeOid.int4) return String(parseInteger(v, `a cast to ${e.type}`));
      if (target === TypeOid.int8) return parseBigint(v, `a cast to ${e.type}`);
      if (target === TypeOid.bool) {
        const t = v.trim().toLowerCase();
        if (['t', 'true', 'yes', 'on', '1'].includes(t)) return 't';
        if (['f', 'false', 'no', 'off', '0'].includes(t)) return 'f';
        throw new PgError('invalid_text_representation', `invalid input syntax for type boolean: "${v}"`);
      }
      return v;
    }
  }
}
