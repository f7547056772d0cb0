import type { IRecognitionException, IToken } from 'chevrotain';
import { PgError } from '../src/errors/pg-error.js';
import type { Statement } from './ast.js';
import {
  DEFAULT_PARSE_LIMITS,
  isStackOverflow,
  nestedTooDeeply,
  stackDepthExceeded,
  statementTooLarge,
  tooManyTokens,
  type ParseLimits,
} from './limits.js';
import { parser } from './parser.js';
import { redactText } from './redact.js';
import { scanStatement, type ScanError } from './scanner.js';

export type * from './ast.js';
export { DEFAULT_PARSE_LIMITS, LIMIT_SETTINGS, WIDEST_PARSE_LIMITS, type ParseLimits } from './limits.js';

/**
 * Texts seen before, and what was made of them: applications and pgbench send the same
 * text again and again; lexing and parsing it was 4-6% of the event loop's time. Only texts
 * that cannot hold a secret are kept: none with a string literal (a password is one), a
 * dollar quote or a key's prefix.
 */
const KEPT_MAX = 512;
const KEPT_TEXT_MAX = 1024;
const mayHoldSecret = (text: string) => /['$]|pcu_/i.test(text);

function keptByText<V>(make: (text: string) => V, keep: (v: V) => V = (v) => v): (text: string) => V {
  const kept = new Map<string, V>();
  return (text) => {
    const hit = kept.get(text);
    if (hit !== undefined) return hit;
    const v = make(text);
    if (text.length <= KEPT_TEXT_MAX && !mayHoldSecret(text)) {
      if (kept.size >= KEPT_MAX) kept.clear();
      kept.set(text, keep(v));
    }
    return v;
  };
}

/** Kept parses, one set per ParseLimits object (a text within one server's limits may not be within another's). */
const keptParses = new WeakMap<ParseLimits, (text: string) => readonly Statement[]>();

/**
 * parse(text): the statements of a query string, or a 42601 PgError positioned in
 * characters (1-based, as PostgreSQL's error position) with what was expected as a hint;
 * 54000 / 54001 when a statement is past one of `limits` (limits.ts).
 * Kept statements are frozen: the engine never changes a statement, which is what lets a
 * prepared statement run many times.
 */
export function parse(text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): readonly Statement[] {
  let kept = keptParses.get(limits);
  if (!kept) {
    kept = keptByText((t) => parseText(t, limits), deepFreeze);
    keptParses.set(limits, kept);
  }
  return kept(text);
}

/** A statement's text fit for the audit trail (redact.ts), kept as parses are. */
export const redactStatement: (text: string) => string = keptByText(redactText);

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function parseText(text: string, limits: ParseLimits): Statement[] {
  const positionOf = characterPositions(text);
  parser.positionOf = positionOf;
  parser.limits = limits;
  const statements: Statement[] = [];
  for (let at = 0; at < text.length; ) {
    const chunk = scanStatement(text, at, limits);
    if (chunk.error) throw lexError(text, chunk.error, positionOf, limits);
    parser.input = chunk.tokens;
    let s: Statement | null;
    try {
      s = parser.oneStatement();
    } catch (err) {
      // The limits keep the parser's recursion far from the stack's end; a limit raised past
      // what the stack holds still ends here, as PostgreSQL's "stack depth limit exceeded".
      if (isStackOverflow(err)) {
        const at = parser.nextToken().startOffset;
        throw stackDepthExceeded(Number.isNaN(at) ? positionOf(text.length) : positionOf(at));
      }
      throw err;
    }
    if (parser.errors.length > 0) throw parseError(text, parser.errors[0]!, positionOf);
    if (s) {
      if (s.end < 0) s.end = text.length;
      while (s.end > s.start && isSpace(text.charCodeAt(s.end - 1))) s.end--;
      statements.push(s);
    }
    at = chunk.end;
  }
  return statements;
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

/**
 * PostgreSQL positions count characters; JavaScript offsets count UTF-16 code units (the
 * two halves of a surrogate pair are one character). The count runs on from the last
 * offset asked for: the parser asks in increasing order, so a statement's positions cost
 * one pass over the text before the last of them — nothing past it, however long the text
 * (a 7 MB statement refused at its first token costs nothing here).
 */
function characterPositions(text: string): (offset: number) => number {
  let lastOffset = 0;
  let lastPosition = 1;
  return (o) => {
    if (o < lastOffset) {
      lastOffset = 0;
      lastPosition = 1;
    }
    for (let i = lastOffset; i < o; i++) {
      const c = text.charCodeAt(i);
      if (!(c >= 0xdc00 && c <= 0xdfff && i > 0 && (text.charCodeAt(i - 1) & 0xfc00) === 0xd800)) lastPosition++;
    }
    lastOffset = o;
    return lastPosition;
  };
}

function lexError(text: string, e: ScanError, positionOf: (o: number) => number, limits: ParseLimits): PgError {
  const position = positionOf(e.offset);
  if (e.limit === 'bytes') return statementTooLarge(limits, position);
  if (e.limit === 'tokens') return tooManyTokens(limits, position);
  if (e.limit === 'nesting') return nestedTooDeeply(limits, position);
  const at = text.slice(e.offset);
  // String contents are never echoed: the string may be a password. The position
  // still lets psql draw its caret under the client's own copy of the text.
  if (at.startsWith("'") || /^[Ee]'/.test(at)) {
    return new PgError('syntax_error', 'unterminated quoted string', { position });
  }
  if (at.startsWith('"')) {
    return new PgError('syntax_error', `unterminated quoted identifier at or near "${clip(at)}"`, { position });
  }
  if (at.startsWith('/*')) return new PgError('syntax_error', 'unterminated /* comment at or near "/*"', { position });
  if (at.startsWith('$')) return new PgError('syntax_error', 'unterminated dollar-quoted string', { position });
  return new PgError('syntax_error', `syntax error at or near "${at.slice(0, e.length)}"`, { position });
}

const clip = (s: string) => (s.length > 40 ? s.slice(0, 40) : s).replace(/\s+$/, '');

const STRING_TOKENS = new Set(['StringLiteral', 'EscapeString', 'DollarString']);

function parseError(text: string, e: IRecognitionException, positionOf: (o: number) => number): PgError {
  const tok: IToken = e.token;
  // When no alternative fits, Chevrotain reports the first token of the alternatives, which
  // may itself be one of the expected ones: a hint that lists the token it points at is noise.
  const expected = expectedFrom(e.message, tok.tokenType.LABEL ?? tok.tokenType.name);
  const hint = expected ? `Expected ${expected}.` : undefined;
  if (tok.tokenType.name === 'EOF' || Number.isNaN(tok.startOffset)) {
    return new PgError('syntax_error', 'syntax error at end of input', { position: positionOf(text.length), hint });
  }
  // The text as written (keyword tokens carry their canonical spelling).
  const near = STRING_TOKENS.has(tok.tokenType.name) ? 'a string constant' : `"${text.slice(tok.startOffset, tok.endOffset! + 1)}"`;
  return new PgError('syntax_error', `syntax error at or near ${near}`, { position: positionOf(tok.startOffset), hint });
}

/** Chevrotain's messages list expected token labels; turn them into "A, B or C". */
function expectedFrom(message: string, pointedAt: string): string | null {
  const labels = new Set<string>();
  const single = /Expecting (?:token of type )?--> (.+?) <--/.exec(message);
  if (single) labels.add(single[1]!);
  for (const m of message.matchAll(/\[([^\]]*)\]/g)) {
    const first = m[1]!.split(',')[0]!.trim();
    if (first) labels.add(first);
  }
  // Categories and alternative spellings of a name add noise, not information.
  const noise = new Set(['EOF', 'NonReserved', 'Reserved', 'a quoted name']);
  const list = [...labels].filter((l) => !noise.has(l) && l !== pointedAt).map((l) => (/^[A-Za-z]/.test(l) ? l : `"${l}"`));
  // A long list (any expression could go here) says less than none at all; a list of
  // keywords (the statements CREATE or ALTER can start) stays readable a little longer.
  const max = list.every((l) => /^[A-Z][A-Z_]*$/.test(l)) ? 10 : 8;
  if (list.length === 0 || list.length > max) return null;
  if (list.length === 1) return list[0]!;
  return `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
}
