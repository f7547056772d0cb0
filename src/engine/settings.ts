import { DEFAULT_PARSE_LIMITS, LIMIT_SETTINGS, type ParseLimits } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import { isValidTimeZone } from './values.js';

export const PRODUCT_VERSION = '0.1.0';
/** The PostgreSQL version whose wire behaviour portcullis follows, as drivers read it. */
export const SERVER_VERSION = `16.0 (portcullis ${PRODUCT_VERSION})`;

interface SettingDef {
  /** The name as PostgreSQL spells it in ParameterStatus and SHOW ALL. */
  display: string;
  default: string;
  /** Sent as ParameterStatus at login and whenever it changes. */
  report?: boolean;
  readOnly?: boolean;
  /** Normalizes or rejects a value. */
  check?: (v: string) => string;
}

const onOff = (name: string) => (v: string) => {
  const t = v.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(t)) return 'on';
  if (['off', 'false', 'no', '0'].includes(t)) return 'off';
  throw new PgError('invalid_parameter_value', `parameter "${name}" requires a Boolean value`);
};

const only = (name: string, allowed: string[], canonical?: (v: string) => string) => (v: string) => {
  const t = v.toLowerCase().replace(/[-_]/g, '');
  const hit = allowed.find((a) => a.toLowerCase().replace(/[-_]/g, '') === t);
  if (!hit) {
    throw new PgError('invalid_parameter_value', `invalid value for parameter "${name}": "${v}"`, {
      hint: `Available values: ${allowed.join(', ')}.`,
    });
  }
  return canonical ? canonical(hit) : hit;
};

const integer = (name: string) => (v: string) => {
  if (!/^-?\d+$/.test(v.trim())) throw new PgError('invalid_parameter_value', `invalid value for parameter "${name}": "${v}"`);
  return v.trim();
};

/**
 * Client session settings: what psql, node-postgres, pgJDBC, psycopg and postgres.js send
 * on connect must succeed. None of these changes what the catalog allows.
 */
const DEFS: Record<string, SettingDef> = {
  server_version: { display: 'server_version', default: SERVER_VERSION, report: true, readOnly: true },
  server_version_num: { display: 'server_version_num', default: '160000', readOnly: true },
  server_encoding: { display: 'server_encoding', default: 'UTF8', report: true, readOnly: true },
  client_encoding: {
    display: 'client_encoding',
    default: 'UTF8',
    report: true,
    check: clientEncoding,
  },
  datestyle: { display: 'DateStyle', default: 'ISO, MDY', report: true, check: (v) => (/^iso\b/i.test(v.trim()) ? 'ISO, MDY' : rejectDateStyle(v)) },
  timezone: {
    display: 'TimeZone',
    default: 'UTC',
    report: true,
    check: (v) => {
      if (!isValidTimeZone(v)) throw new PgError('invalid_parameter_value', `invalid value for parameter "TimeZone": "${v}"`);
      return v;
    },
  },
  intervalstyle: { display: 'IntervalStyle', default: 'postgres', report: true, check: only('IntervalStyle', ['postgres']) },
  integer_datetimes: { display: 'integer_datetimes', default: 'on', report: true, readOnly: true },
  standard_conforming_strings: { display: 'standard_conforming_strings', default: 'on', report: true, check: only('standard_conforming_strings', ['on']) },
  application_name: { display: 'application_name', default: '', report: true, check: (v) => v.slice(0, 63) },
  is_superuser: { display: 'is_superuser', default: 'off', report: true, readOnly: true },
  session_authorization: { display: 'session_authorization', default: '', report: true, readOnly: true },
  default_transaction_read_only: { display: 'default_transaction_read_only', default: 'off', report: true, check: onOff('default_transaction_read_only') },
  in_hot_standby: { display: 'in_hot_standby', default: 'off', report: true, readOnly: true },
  // Catalog transactions are serializable: each commit is checked against what committed before it.
  default_transaction_isolation: { display: 'default_transaction_isolation', default: 'serializable', check: only('default_transaction_isolation', ['serializable', 'repeatable read', 'read committed', 'read uncommitted'], () => 'serializable') },
  transaction_isolation: { display: 'transaction_isolation', default: 'serializable', check: only('transaction_isolation', ['serializable', 'repeatable read', 'read committed', 'read uncommitted'], () => 'serializable') },
  transaction_read_only: { display: 'transaction_read_only', default: 'off', check: onOff('transaction_read_only') },
  search_path: { display: 'search_path', default: '"$user", public' },
  extra_float_digits: { display: 'extra_float_digits', default: '1', check: integer('extra_float_digits') },
  statement_timeout: { display: 'statement_timeout', default: '0' },
  lock_timeout: { display: 'lock_timeout', default: '0' },
  idle_in_transaction_session_timeout: { display: 'idle_in_transaction_session_timeout', default: '0' },
  idle_session_timeout: { display: 'idle_session_timeout', default: '0' },
  client_min_messages: { display: 'client_min_messages', default: 'notice', check: only('client_min_messages', ['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'log', 'notice', 'warning', 'error']) },
  bytea_output: { display: 'bytea_output', default: 'hex', check: only('bytea_output', ['hex', 'escape']) },
  max_identifier_length: { display: 'max_identifier_length', default: '63', readOnly: true },
  password_encryption: { display: 'password_encryption', default: 'scram-sha-256', check: only('password_encryption', ['scram-sha-256']) },
  // PostgreSQL 16's scram_iterations: the iteration count for passwords hashed in this session.
  scram_iterations: {
    display: 'scram_iterations',
    default: '4096',
    check: (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 2147483647) throw new PgError('invalid_parameter_value', `${v} is outside the valid range for parameter "scram_iterations" (1 .. 2147483647)`);
      return String(n);
    },
  },
  synchronous_commit: { display: 'synchronous_commit', default: 'on' },
  jit: { display: 'jit', default: 'off' },
  work_mem: { display: 'work_mem', default: '4MB' },
  geqo: { display: 'geqo', default: 'on' },
  row_security: { display: 'row_security', default: 'on' },
  lc_messages: { display: 'lc_messages', default: 'C' },
  lc_monetary: { display: 'lc_monetary', default: 'C' },
  lc_numeric: { display: 'lc_numeric', default: 'C' },
  lc_time: { display: 'lc_time', default: 'C' },
  // Statement limits: server configuration, shown here as PostgreSQL shows max_stack_depth.
  // Read-only for the session: a client that could raise them could hold the event loop.
  ...limitDefs(),
};

function limitDefs(): Record<string, SettingDef> {
  const out: Record<string, SettingDef> = {};
  for (const [k, name] of Object.entries(LIMIT_SETTINGS) as [keyof ParseLimits, string][]) {
    out[name] = { display: name, default: String(DEFAULT_PARSE_LIMITS[k]), readOnly: true };
  }
  return out;
}

/** The server's statement limits as session setting values (SHOW max_statement_bytes, ...). */
export function limitSettings(limits: ParseLimits): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, name] of Object.entries(LIMIT_SETTINGS) as [keyof ParseLimits, string][]) out[name] = String(limits[k]);
  return out;
}

/**
 * Encoding names as PostgreSQL matches them (clean_encoding_name in encnames.c): case and
 * every character that is not a letter or digit are ignored, so asyncpg's `'utf-8'` (quotes
 * included, as it sends it at startup), `UTF-8`, `utf_8` and `Unicode` all name UTF8.
 * SQL_ASCII is what psql sends under the C locale; ASCII is a subset of UTF-8. Other
 * encodings would need conversion, which portcullis does not do.
 */
const ENCODINGS: Record<string, string> = { utf8: 'UTF8', unicode: 'UTF8', sqlascii: 'SQL_ASCII' };

function clientEncoding(v: string): string {
  let key = '';
  for (const ch of v.toLowerCase()) if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) key += ch;
  const hit = ENCODINGS[key];
  if (!hit) {
    throw new PgError('invalid_parameter_value', `invalid value for parameter "client_encoding": "${v}"`, {
      detail: 'portcullis speaks UTF-8 (and its subset SQL_ASCII) only.',
      hint: 'Available values: UTF8, SQL_ASCII (spelled any way PostgreSQL accepts, e.g. utf-8, UNICODE).',
    });
  }
  return hit;
}

function rejectDateStyle(v: string): never {
  throw new PgError('invalid_parameter_value', `invalid value for parameter "DateStyle": "${v}"`, {
    detail: 'portcullis writes timestamps in the ISO style only.',
  });
}

/**
 * A value the server keeps for a session beside its settings (whom it acts as, where its
 * names resolve): typed, and no setting a client can name, but transactional as SET is (a
 * ROLLBACK puts back its value at BEGIN) and back to its first value after DISCARD ALL.
 */
export interface SessionValue<T> {
  get(): T;
  set(value: T): void;
}

/** One session's settings, with PostgreSQL's transactional SET semantics. */
export class Settings {
  private values = new Map<string, string>();
  private changed = new Map<string, string>();
  /**
   * In a transaction: each setting's value at BEGIN (undefined: it had none), kept the first
   * time the transaction changes it; a ROLLBACK puts them back. Null outside a transaction.
   */
  private atBegin: Map<string, string | undefined> | null = null;
  /** SET LOCAL values: restored at transaction end. */
  private beforeLocal: Map<string, string> | null = null;
  /**
   * Every value as the session started (defaults, then the startup packet's settings and
   * the server's own): what RESET and DEFAULT go back to, as PostgreSQL's reset values, and
   * what DISCARD ALL restores wholesale.
   */
  private atStartup: Map<string, string> | null = null;
  /** The session values (`sessionValue`), each with its first value (what DISCARD ALL restores). */
  private readonly sessionValues: { initial: unknown; cell: { value: unknown } }[] = [];
  /** In a transaction: each session value's value at BEGIN, kept when the transaction first changes it. */
  private sessionValuesAtBegin: Map<{ value: unknown }, unknown> | null = null;

  constructor(defaults: Record<string, string> = {}) {
    for (const [k, d] of Object.entries(DEFS)) this.values.set(k, defaults[k] ?? d.default);
  }

  /** A typed session value, first `initial`, that transactions and DISCARD ALL treat as settings. */
  sessionValue<T>(initial: T): SessionValue<T> {
    const cell = { value: initial as unknown };
    this.sessionValues.push({ initial, cell });
    return {
      get: () => cell.value as T,
      set: (value: T) => this.assignSessionValue(cell, value),
    };
  }

  /**
   * Settings the server decides (is_superuser, session_authorization); never
   * client-settable, but transactional and reported like the others.
   */
  setInternal(name: string, value: string | undefined): void {
    if (value === undefined) {
      this.remember(name);
      this.values.delete(name);
    } else this.assign(name, value);
  }

  get(name: string): string {
    const key = name.toLowerCase();
    const v = this.values.get(key);
    if (v === undefined) throw unknown(name);
    return v;
  }

  has(name: string): boolean {
    return this.values.has(name.toLowerCase());
  }

  /** SET name TO value (null = DEFAULT). */
  set(name: string, value: string | null, local = false): void {
    const key = name.toLowerCase();
    // `auth.x` and `"$auth.x"` both read like the session's identity: neither may be set, so no
    // setting can ever be mistaken for (or shadow) a $auth variable.
    const bare = key.startsWith('$') ? key.slice(1) : key;
    if (bare === 'auth' || bare.startsWith('auth.')) {
      throw new PgError('cant_change_runtime_param', `parameter "${name}" cannot be changed`, {
        detail: '$auth.* variables come from the login and are read-only for the session.',
      });
    }
    const def = DEFS[key];
    if (!def && !key.includes('.')) throw unknown(name);
    if (!def && !CUSTOM_NAME.test(key)) {
      throw new PgError('invalid_name', `invalid configuration parameter name "${name}"`, {
        detail: 'Custom parameter names must be two or more simple identifiers separated by dots.',
      });
    }
    if (def?.readOnly) throw new PgError('cant_change_runtime_param', `parameter "${name}" cannot be changed`);
    const next = value === null ? (this.atStartup?.get(key) ?? def?.default ?? '') : def?.check ? def.check(value) : value;
    if (local) {
      this.beforeLocal ??= new Map();
      if (!this.beforeLocal.has(key)) this.beforeLocal.set(key, this.values.get(key) ?? '');
    }
    this.assign(key, next);
  }

  reset(name: string | null): void {
    if (name === null) {
      for (const [k, d] of Object.entries(DEFS)) if (!d.readOnly) this.assign(k, this.atStartup?.get(k) ?? d.default);
      return;
    }
    this.set(name, null);
  }

  /** The session is open: the values now are those RESET goes back to (see `atStartup`). */
  markStartup(): void {
    this.atStartup = new Map(this.values);
  }

  /**
   * DISCARD ALL: every value back to the session's start, the server's own included (the
   * session values: the acting user, the tenant names resolve in), custom settings emptied,
   * as PostgreSQL's SET SESSION AUTHORIZATION DEFAULT and RESET ALL do.
   */
  discardAll(): void {
    const start = this.atStartup ?? new Map<string, string>();
    for (const key of [...this.values.keys()]) if (!start.has(key)) this.assign(key, '');
    for (const [key, value] of start) this.assign(key, value);
    for (const { initial, cell } of this.sessionValues) this.assignSessionValue(cell, initial);
  }

  /** ParameterStatus values sent after login. */
  reported(): [string, string][] {
    return Object.entries(DEFS)
      .filter(([, d]) => d.report)
      .map(([k, d]) => [d.display, this.values.get(k) ?? d.default]);
  }

  takeChanges(): [string, string][] {
    const out = [...this.changed.entries()].map(([k, v]): [string, string] => [DEFS[k]?.display ?? k, v]);
    this.changed.clear();
    return out;
  }

  all(): [string, string][] {
    return [...this.values.entries()].map(([k, v]): [string, string] => [DEFS[k]?.display ?? k, v]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  // Every statement runs in a transaction: BEGIN keeps nothing until a setting changes.
  begin(): void {
    this.atBegin = new Map();
    this.sessionValuesAtBegin = new Map();
  }

  end(committed: boolean): void {
    const atBegin = this.atBegin;
    this.atBegin = null;
    const sessionValuesAtBegin = this.sessionValuesAtBegin;
    this.sessionValuesAtBegin = null;
    if (!committed && sessionValuesAtBegin) for (const [cell, value] of sessionValuesAtBegin) cell.value = value;
    if (!committed && atBegin) {
      for (const [k, v] of atBegin) {
        if (v === undefined) this.values.delete(k);
        else this.assign(k, v);
      }
    } else if (this.beforeLocal) {
      for (const [k, v] of this.beforeLocal) this.assign(k, v);
    }
    this.beforeLocal = null;
  }

  /** The value `key` had at BEGIN, kept before the transaction first changes it. */
  private remember(key: string): void {
    if (this.atBegin && !this.atBegin.has(key)) this.atBegin.set(key, this.values.get(key));
  }

  private assignSessionValue(cell: { value: unknown }, value: unknown): void {
    if (this.sessionValuesAtBegin && !this.sessionValuesAtBegin.has(cell)) this.sessionValuesAtBegin.set(cell, cell.value);
    cell.value = value;
  }

  private assign(key: string, value: string): void {
    if (this.values.get(key) === value) return;
    this.remember(key);
    this.values.set(key, value);
    if (DEFS[key]?.report) this.changed.set(key, value);
  }
}

/** PostgreSQL's rule for a custom (placeholder) setting's name: dotted simple identifiers. */
const CUSTOM_NAME = /^[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*(?:\.[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*)+$/;

const unknown = (name: string) => new PgError('undefined_object', `unrecognized configuration parameter "${name}"`);
