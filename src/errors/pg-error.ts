import { SqlState, type SqlStateName, type SqlStateCode } from './sqlstate.js';

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface PgErrorFields {
  detail?: string;
  hint?: string;
  /** 1-based character position in the statement text (psql draws its caret from it). */
  position?: number;
  severity?: Severity;
}

/** The one error type: everything that reaches a client as an ErrorResponse is a PgError. */
export class PgError extends Error {
  readonly code: SqlStateCode;
  readonly state: SqlStateName;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly position: number | undefined;
  readonly severity: Severity;

  constructor(state: SqlStateName, message: string, fields: PgErrorFields = {}) {
    super(message);
    this.name = 'PgError';
    this.state = state;
    this.code = SqlState[state];
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
    this.severity = fields.severity ?? 'ERROR';
  }
}

/** The fields of an ErrorResponse / NoticeResponse, as the wire and the CLI clients print them. */
export interface ErrorFields {
  severity: string;
  code: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
  position?: number | undefined;
}

export function errorFields(e: PgError): ErrorFields {
  return { severity: e.severity, code: e.code, message: e.message, detail: e.detail, hint: e.hint, position: e.position };
}

/** A JavaScript stack overflow (V8's RangeError "Maximum call stack size exceeded"). */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack size/i.test(err.message);
}

/**
 * PostgreSQL's answer to a statement that nests deeper than its stack (check_stack_depth):
 * 54001 "stack depth limit exceeded". The statement limits (max_nesting_depth, ...) are set
 * so that this is never reached; it keeps a limit raised too far, or a path no limit covers,
 * from ending as XX000.
 */
export function stackDepthExceeded(position?: number): PgError {
  return new PgError('statement_too_complex', 'stack depth limit exceeded', {
    hint: 'The statement nests too deeply for the server. The limit is the server setting max_nesting_depth; SHOW max_nesting_depth shows it.',
    ...(position === undefined ? {} : { position }),
  });
}

/** Anything thrown that is not a PgError is a bug: report it as XX000 without internals. */
export function asPgError(err: unknown): PgError {
  if (err instanceof PgError) return err;
  if (isStackOverflow(err)) return stackDepthExceeded();
  const e = err as { code?: string; message?: string };
  if (e && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) {
    return new PgError('disk_full', 'could not write to the catalog log: no space left on device');
  }
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    return new PgError('io_error', `could not write to the catalog log: ${e.code}`);
  }
  return new PgError('internal_error', 'internal error', {
    detail: 'the server logged the cause',
  });
}
