import type { IToken, TokenType } from 'chevrotain';
import * as T from './tokens.js';

/**
 * The lexer: a hand-written scanner producing Chevrotain tokens of the types in tokens.ts.
 * It replaced Chevrotain's regex lexer because lexing was half of parse time (measured by
 * `npm run bench`: see bench/README.md); one pass over char codes with a switch on the first
 * character is several times faster and allocates only the tokens themselves.
 * The rules are PostgreSQL's: nested block comments, '' inside strings, E'' escapes,
 * $tag$ dollar quoting, standard_conforming_strings on.
 */

export interface ScanError {
  offset: number;
  length: number;
  /** Set when a limit, not the text, stopped the scan (a 54000 / 54001, not a 42601). */
  limit?: 'bytes' | 'tokens' | 'nesting';
}

/** What one statement may hold (the ParseLimits the scanner checks). */
export interface ScanLimits {
  maxStatementBytes: number;
  maxStatementTokens: number;
  maxNestingDepth: number;
}

const UNLIMITED: ScanLimits = { maxStatementBytes: Infinity, maxStatementTokens: Infinity, maxNestingDepth: Infinity };

export interface ScanResult {
  tokens: IToken[];
  error: ScanError | null;
}

const isIdentStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 0x80;
const isIdentPart = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
const isDigit = (c: number) => c >= 48 && c <= 57;

function token(type: TokenType, image: string, start: number): IToken {
  return {
    image,
    startOffset: start,
    endOffset: start + image.length - 1,
    tokenType: type,
    tokenTypeIdx: type.tokenTypeIdx!,
  } as IToken;
}

/** All the tokens of a text (used by tests; `parse` scans one statement at a time). */
export function scan(text: string): ScanResult {
  const tokens: IToken[] = [];
  let at = 0;
  while (at < text.length) {
    const chunk = scanStatement(text, at);
    for (const t of chunk.tokens) tokens.push(t);
    if (chunk.error) return { tokens, error: chunk.error };
    at = chunk.end;
  }
  return { tokens, error: null };
}

export interface StatementScan extends ScanResult {
  /** Where scanning stopped: just after the statement's semicolon, or the end of the text. */
  end: number;
}

/**
 * The tokens from `from` up to and including the next semicolon (strings, quoted names and
 * comments hide theirs). Scanning a statement at a time lets its tokens die young: a
 * 100,000-statement file never holds a million live tokens.
 *
 * With `limits`, the scan stops as soon as the statement is past one of them — before the
 * tokens beyond it are made, and long before the parser sees any: a 7 MB statement costs a
 * megabyte of scanning, not seven megabytes of tokens and a parse (docs/decisions.md).
 */
export function scanStatement(text: string, from: number, limits: ScanLimits = UNLIMITED): StatementScan {
  const tokens: IToken[] = [];
  // Nothing past the byte limit is looked at: a statement that reaches `n` before it ends is
  // over the limit, whatever follows.
  const n = Math.min(text.length, from + limits.maxStatementBytes + 1);
  const cut = n < text.length;
  let i = from;
  // Open parentheses, plus the prefix NOTs since the last other word: NOT NOT x and
  // NOT (NOT (x)) nest a level per NOT and per "(" (x NOT IN and IS NOT NULL do not). The
  // parser recurses on "(" and builds a node per NOT; it counts NOTs exactly (NOT (a AND
  // NOT (b ... too). This count stops the common deep statements before they are scanned.
  let depth = 0;
  let nots = 0;
  const fail = (offset: number, length = 1): StatementScan => ({ tokens, error: { offset, length }, end: offset });
  const over = (limit: 'bytes' | 'tokens' | 'nesting', offset: number): StatementScan => ({ tokens, error: { offset, length: 1, limit }, end: offset });
  // A code unit is one to three bytes of UTF-8 (a surrogate pair, two units, is four bytes),
  // so more units than the byte limit is over it, and fewer than a third of it is under it.
  const maxUnits = limits.maxStatementBytes;
  const firstOffset = () => tokens[0]?.startOffset ?? from;
  /** A lexeme that runs into `n`: unterminated, or the statement is over the limit. */
  const unended = (start: number, length = 1) => (cut ? over('bytes', firstOffset()) : fail(start, length));
  const finish = (end: number): StatementScan => {
    if (tokens.length > limits.maxStatementTokens) return over('tokens', tokens[limits.maxStatementTokens]!.startOffset);
    const units = end - from;
    if (units > maxUnits || (units * 3 > maxUnits && Buffer.byteLength(text.slice(from, end)) > maxUnits)) return over('bytes', firstOffset());
    return { tokens, error: null, end };
  };
  while (i < n) {
    if (tokens.length > limits.maxStatementTokens) return over('tokens', tokens[limits.maxStatementTokens]!.startOffset);
    const c = text.charCodeAt(i);
    // whitespace
    if (c === 32 || c === 10 || c === 9 || c === 13 || c === 12 || c === 11) {
      i++;
      continue;
    }
    const start = i;
    // -- line comment
    if (c === 45 && text.charCodeAt(i + 1) === 45) {
      while (i < n && text.charCodeAt(i) !== 10) i++;
      continue;
    }
    // /* nested block comment */
    if (c === 47 && text.charCodeAt(i + 1) === 42) {
      let depth = 0;
      while (i < n) {
        if (text.charCodeAt(i) === 47 && text.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (text.charCodeAt(i) === 42 && text.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
          if (depth === 0) break;
        } else i++;
      }
      if (depth !== 0) return unended(start, 2);
      continue;
    }
    if (isIdentStart(c)) {
      // E'...' escape string
      if ((c === 69 || c === 101) && text.charCodeAt(i + 1) === 39) {
        const end = quoted(text, i + 1, n, 39, true);
        if (end < 0) return unended(start);
        tokens.push(token(T.EscapeString, text.slice(start, end), start));
        i = end;
        continue;
      }
      i++;
      while (i < n && isIdentPart(text.charCodeAt(i))) i++;
      const image = text.slice(start, i);
      const kw = T.keywordOf(image);
      if (kw === T.Not && isPrefixPosition(tokens[tokens.length - 1])) {
        if (depth + ++nots > limits.maxNestingDepth) return over('nesting', start);
      } else nots = 0;
      // A keyword's image is its canonical spelling (shared, same length): the word's own
      // substring dies young instead of living as long as the token vector.
      tokens.push(kw ? token(kw, kw.name, start) : token(T.Identifier, image, start));
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(i + 1)))) {
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 46 && c !== 46) {
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
      } else if (c === 46) {
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
      }
      const e = text.charCodeAt(i);
      if (e === 101 || e === 69) {
        let j = i + 1;
        if (text.charCodeAt(j) === 43 || text.charCodeAt(j) === 45) j++;
        if (isDigit(text.charCodeAt(j))) {
          i = j;
          while (i < n && isDigit(text.charCodeAt(i))) i++;
        }
      }
      tokens.push(token(T.Number_, text.slice(start, i), start));
      continue;
    }
    switch (c) {
      case 39: {
        // '...'
        const end = quoted(text, i, n, 39, false);
        if (end < 0) return unended(start);
        tokens.push(token(T.StringLiteral, text.slice(start, end), start));
        i = end;
        continue;
      }
      case 34: {
        // "..."
        const end = quoted(text, i, n, 34, false);
        if (end < 0) return unended(start);
        tokens.push(token(T.QuotedIdentifier, text.slice(start, end), start));
        i = end;
        continue;
      }
      case 36: {
        // $auth.x, $1, $tag$...$tag$
        const auth = /^\$auth(?:\.[A-Za-z_][A-Za-z0-9_]*)+/i.exec(text.slice(i, i + 256));
        if (auth) {
          tokens.push(token(T.AuthRef, auth[0], start));
          i += auth[0].length;
          continue;
        }
        if (isDigit(text.charCodeAt(i + 1))) {
          i++;
          while (i < n && isDigit(text.charCodeAt(i))) i++;
          tokens.push(token(T.Param, text.slice(start, i), start));
          continue;
        }
        const tag = /^\$(?:[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/.exec(text.slice(i, i + 256));
        if (tag) {
          const close = text.indexOf(tag[0], i + tag[0].length);
          if (close < 0 || close + tag[0].length > n) return unended(start);
          i = close + tag[0].length;
          tokens.push(token(T.DollarString, text.slice(start, i), start));
          continue;
        }
        return fail(start);
      }
      case 59:
        tokens.push(token(T.Semicolon, ';', start));
        return finish(i + 1);
      case 44:
        tokens.push(token(T.Comma, ',', start));
        i++;
        continue;
      case 40:
        // Nesting is bounded here for every rule at once: the parser recurses on "(".
        if (++depth + nots > limits.maxNestingDepth) return over('nesting', start);
        tokens.push(token(T.LParen, '(', start));
        i++;
        continue;
      case 41:
        if (depth > 0) depth--;
        tokens.push(token(T.RParen, ')', start));
        i++;
        continue;
      case 46:
        tokens.push(token(T.Dot, '.', start));
        i++;
        continue;
      case 43:
        tokens.push(token(T.Plus, '+', start));
        i++;
        continue;
      case 45:
        tokens.push(token(T.Minus, '-', start));
        i++;
        continue;
      case 42:
        tokens.push(token(T.Star, '*', start));
        i++;
        continue;
      case 61:
        tokens.push(token(T.Equals, '=', start));
        i++;
        continue;
      case 58:
        if (text.charCodeAt(i + 1) === 58) {
          tokens.push(token(T.DoubleColon, '::', start));
          i += 2;
          continue;
        }
        return fail(start);
      case 33:
        if (text.charCodeAt(i + 1) === 61) {
          tokens.push(token(T.NotEquals, '!=', start));
          i += 2;
          continue;
        }
        return fail(start);
      case 60: {
        const d = text.charCodeAt(i + 1);
        if (d === 62) tokens.push(token(T.NotEquals, '<>', start));
        else if (d === 61) tokens.push(token(T.LessEq, '<=', start));
        else {
          tokens.push(token(T.Less, '<', start));
          i++;
          continue;
        }
        i += 2;
        continue;
      }
      case 62:
        if (text.charCodeAt(i + 1) === 61) {
          tokens.push(token(T.GreaterEq, '>=', start));
          i += 2;
        } else {
          tokens.push(token(T.Greater, '>', start));
          i++;
        }
        continue;
      default:
        return fail(start);
    }
  }
  return finish(n);
}

/** Whether a NOT after `prev` negates what follows (after "(", AND, OR, NOT), rather than being part of NOT IN or IS NOT. */
function isPrefixPosition(prev: IToken | undefined): boolean {
  const t = prev?.tokenType;
  return t === T.LParen || t === T.And || t === T.Or || t === T.Not;
}

/**
 * The end (exclusive) of a quoted lexeme starting at `open` (the quote), or -1 when it is
 * not terminated before `n`. A doubled quote is part of the lexeme; with `backslash`, so is \\x.
 */
function quoted(text: string, open: number, n: number, q: number, backslash: boolean): number {
  let i = open + 1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (backslash && c === 92) {
      i += 2;
      continue;
    }
    if (c === q) {
      if (text.charCodeAt(i + 1) === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}
