import { PgError } from '../src/errors/pg-error.js';
export { isStackOverflow, stackDepthExceeded } from '../src/errors/pg-error.js';

/**
 * How much one statement may ask of the parser: past a limit, 54000 (too large) or 54001
 * (too complex); the limits are settings; never a crash, never XX000. Each is checked before
 * the work it bounds: bytes and tokens while scanning (scanner.ts), nesting as each "(" or
 * NOT is met, predicate size and IN-list length as the predicate is built (rules/rls.ts).
 * The server takes them from its configuration (max_statement_bytes, ...); docs/decisions.md
 * says why the defaults are what they are.
 */
export interface ParseLimits {
  /** UTF-8 bytes of one statement, from where the previous one ended to its semicolon. */
  readonly maxStatementBytes: number;
  /** Tokens (names, keywords, literals, operators) of one statement. */
  readonly maxStatementTokens: number;
  /** Parentheses and NOTs nested inside one another. */
  readonly maxNestingDepth: number;
  /** Nodes of one RLS predicate: conditions, AND / OR / NOT, operands and IN-list items. */
  readonly maxPredicateSize: number;
  /** Items of one IN (...) list. */
  readonly maxInListLength: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = Object.freeze({
  maxStatementBytes: 1024 * 1024,
  maxStatementTokens: 50_000,
  maxNestingDepth: 100,
  maxPredicateSize: 10_000,
  maxInListLength: 5_000,
});

/**
 * The most a server may be configured to allow (the config's upper bounds). A statement
 * cannot be longer than a pgwire message (16 MiB); nesting past 1000 outruns the stack first
 * (still 54001, "stack depth limit exceeded"). `portcullis apply` checks files against these
 * before sending them: it cannot know the server's own limits, which the server applies.
 */
export const WIDEST_PARSE_LIMITS: ParseLimits = Object.freeze({
  maxStatementBytes: 16 * 1024 * 1024,
  maxStatementTokens: 10_000_000,
  maxNestingDepth: 1000,
  maxPredicateSize: 10_000_000,
  maxInListLength: 10_000_000,
});

/** The limits' names as settings (config keys, SHOW), for messages and hints. */
export const LIMIT_SETTINGS: Record<keyof ParseLimits, string> = {
  maxStatementBytes: 'max_statement_bytes',
  maxStatementTokens: 'max_statement_tokens',
  maxNestingDepth: 'max_nesting_depth',
  maxPredicateSize: 'max_predicate_size',
  maxInListLength: 'max_in_list_length',
};

const hint = (limit: keyof ParseLimits) =>
  `The limit is the server setting ${LIMIT_SETTINGS[limit]}; SHOW ${LIMIT_SETTINGS[limit]} shows it.`;

/** 54000: more bytes than max_statement_bytes; `position` is the statement's first token. */
export function statementTooLarge(limits: ParseLimits, position: number): PgError {
  return new PgError('program_limit_exceeded', `statement is larger than ${limits.maxStatementBytes} bytes`, {
    position,
    hint: `Split it into smaller statements. ${hint('maxStatementBytes')}`,
  });
}

/** 54001: more tokens than max_statement_tokens; `position` is the first token past the limit. */
export function tooManyTokens(limits: ParseLimits, position: number): PgError {
  return new PgError('statement_too_complex', `statement has more than ${limits.maxStatementTokens} tokens`, {
    position,
    hint: `Split it into smaller statements. ${hint('maxStatementTokens')}`,
  });
}

/** 54001: nesting past max_nesting_depth; `position` is the "(" or NOT that goes one too deep. */
export function nestedTooDeeply(limits: ParseLimits, position: number): PgError {
  return new PgError('statement_too_complex', `expression nested more than ${limits.maxNestingDepth} levels deep`, {
    position,
    hint: hint('maxNestingDepth'),
  });
}

/** 54001: a predicate of more than max_predicate_size nodes; `position` is where it went past. */
export function predicateTooLarge(limits: ParseLimits, position: number): PgError {
  return new PgError('statement_too_complex', `RLS predicate has more than ${limits.maxPredicateSize} terms`, {
    position,
    hint: `Conditions, AND, OR, NOT, operands and IN-list items count one each. ${hint('maxPredicateSize')}`,
  });
}

/** 54000: an IN list longer than max_in_list_length; `position` is its first item past the limit. */
export function inListTooLong(limits: ParseLimits, position: number): PgError {
  return new PgError('program_limit_exceeded', `IN list has more than ${limits.maxInListLength} items`, {
    position,
    hint: hint('maxInListLength'),
  });
}
