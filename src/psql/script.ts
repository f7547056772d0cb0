/**
 * How psql reads a script (its MainLoop and psqlscan.l), so that `portcullis golden` and
 * `apply` cut a file into exactly the query strings psql would send:
 * - lines are read one at a time; empty lines outside a quote are skipped (not even
 *   echoed);
 * - whitespace and `--` comments before the first token of a query are dropped, later
 *   ones kept; source lines are joined with "\n";
 * - a `;` outside quotes, comments and parentheses ends a query and is part of it;
 *   the rest of the line goes on to the next query;
 * - a backslash outside quotes starts a meta-command that runs to the end of the line;
 * - at the end of the input, an unterminated query is sent as it is.
 * Variable interpolation (`:name`) is not done: scripts for golden files do not use it.
 */

export type ScriptItem =
  /** A source line, as `psql -a` echoes it. */
  | { kind: 'line'; text: string; line: number }
  /**
   * A query string, with where its first character is in the file (1-based), and the file
   * line of each of its lines (psql drops empty lines, so they need not be consecutive).
   */
  | { kind: 'query'; sql: string; line: number; column: number; lines: number[] }
  /** A meta-command: `\set VERBOSITY verbose` → name "set", args "VERBOSITY verbose". */
  | { kind: 'meta'; name: string; args: string; line: number };

type Quote =
  | { kind: 'none' }
  | { kind: 'single'; backslash: boolean }
  | { kind: 'double' }
  | { kind: 'dollar'; tag: string }
  | { kind: 'comment'; depth: number };

const DOLLAR_TAG = /^\$(?:[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/;
const isIdentChar = (c: string) => /[A-Za-z0-9_$\u0080-\uFFFF]/.test(c);
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

/**
 * A script's lines, read one at a time: by readScript, and by a COPY ... FROM STDIN, whose
 * data psql reads from the same input, starting at the line after the one that held the
 * COPY (the rest of that line is read as SQL after the copy), up to a line `\.` or the end.
 */
export class ScriptInput {
  private readonly lines: string[];
  private at = 0;

  constructor(text: string) {
    // psql reads lines with fgets: a final newline ends the last line, it does not start one.
    this.lines = text.split('\n');
    if (this.lines[this.lines.length - 1] === '') this.lines.pop();
  }

  /** The next line and its number (1-based), or null at the end of the script. */
  next(): { text: string; line: number } | null {
    if (this.at >= this.lines.length) return null;
    const text = this.lines[this.at]!;
    this.at++;
    return { text, line: this.at };
  }
}

export function* readScript(script: string | ScriptInput): Generator<ScriptItem> {
  const input = typeof script === 'string' ? new ScriptInput(script) : script;
  let buf = '';
  let start = { line: 0, column: 0 };
  let lineMap: number[] = [];
  let quote: Quote = { kind: 'none' };
  let parens = 0;

  for (let next = input.next(); next !== null; next = input.next()) {
    const line = next.text;
    const lineNo = next.line;
    // psql skips an empty line (outside a quote) before it would echo it.
    if (line === '' && quote.kind === 'none') continue;
    yield { kind: 'line', text: line, line: lineNo };
    if (buf.length > 0) {
      buf += '\n';
      lineMap.push(lineNo);
    }
    const append = (s: string, at: number) => {
      if (buf.length === 0) {
        start = { line: lineNo, column: at + 1 };
        lineMap = [lineNo];
      }
      buf += s;
    };
    let i = 0;
    while (i < line.length) {
      const c = line[i]!;
      switch (quote.kind) {
        case 'single': {
          if (quote.backslash && c === '\\') {
            append(line.slice(i, i + 2), i);
            i += 2;
          } else if (c === "'") {
            if (line[i + 1] === "'") {
              append("''", i);
              i += 2;
            } else {
              append(c, i);
              i++;
              quote = { kind: 'none' };
            }
          } else {
            append(c, i);
            i++;
          }
          continue;
        }
        case 'double': {
          if (c === '"' && line[i + 1] === '"') {
            append('""', i);
            i += 2;
            continue;
          }
          if (c === '"') quote = { kind: 'none' };
          append(c, i);
          i++;
          continue;
        }
        case 'dollar': {
          if (line.startsWith(quote.tag, i)) {
            append(quote.tag, i);
            i += quote.tag.length;
            quote = { kind: 'none' };
          } else {
            append(c, i);
            i++;
          }
          continue;
        }
        case 'comment': {
          if (line.startsWith('/*', i)) {
            quote = { kind: 'comment', depth: quote.depth + 1 };
            append('/*', i);
            i += 2;
          } else if (line.startsWith('*/', i)) {
            quote = quote.depth === 1 ? { kind: 'none' } : { kind: 'comment', depth: quote.depth - 1 };
            append('*/', i);
            i += 2;
          } else {
            append(c, i);
            i++;
          }
          continue;
        }
        case 'none':
          break;
      }
      if (isSpace(c)) {
        if (buf.length > 0) buf += c;
        i++;
      } else if (line.startsWith('--', i)) {
        // A comment runs to the end of the line; like whitespace, dropped before a query.
        if (buf.length > 0) buf += line.slice(i);
        i = line.length;
      } else if (line.startsWith('/*', i)) {
        quote = { kind: 'comment', depth: 1 };
        append('/*', i);
        i += 2;
      } else if (c === "'") {
        const backslash = i > 0 && (line[i - 1] === 'E' || line[i - 1] === 'e') && (i < 2 || !isIdentChar(line[i - 2]!));
        quote = { kind: 'single', backslash };
        append(c, i);
        i++;
      } else if (c === '"') {
        quote = { kind: 'double' };
        append(c, i);
        i++;
      } else if (c === '$' && !(i > 0 && isIdentChar(line[i - 1]!)) && DOLLAR_TAG.test(line.slice(i))) {
        const tag = DOLLAR_TAG.exec(line.slice(i))![0];
        quote = { kind: 'dollar', tag };
        append(tag, i);
        i += tag.length;
      } else if (c === '(') {
        parens++;
        append(c, i);
        i++;
      } else if (c === ')') {
        if (parens > 0) parens--;
        append(c, i);
        i++;
      } else if (c === ';' && parens === 0) {
        append(c, i);
        i++;
        yield { kind: 'query', sql: buf, ...start, lines: lineMap };
        buf = '';
      } else if (c === ';') {
        append(c, i);
        i++;
      } else if (c === '\\') {
        const m = /^\\([A-Za-z0-9_!?]+|\S)\s*(.*)$/.exec(line.slice(i))!;
        yield { kind: 'meta', name: m[1]!, args: m[2]!, line: lineNo };
        i = line.length;
      } else {
        // Identifiers as a whole, so a `$` or `E` inside a name is not read as a quote.
        let j = i + 1;
        if (isIdentChar(c)) while (j < line.length && isIdentChar(line[j]!)) j++;
        append(line.slice(i, j), i);
        i = j;
      }
    }
  }
  if (buf.length > 0) yield { kind: 'query', sql: buf, ...start, lines: lineMap };
}

/** Where a 1-based character position of a query is in its file: line and column, 1-based. */
export function filePosition(q: Extract<ScriptItem, { kind: 'query' }>, position: number): { line: number; column: number } {
  const before = Array.from(q.sql).slice(0, Math.max(0, position - 1)).join('');
  const k = before.split('\n').length - 1; // which line of the query
  const col = Array.from(before.slice(before.lastIndexOf('\n') + 1)).length;
  return { line: q.lines[k] ?? q.line, column: k === 0 ? q.column + col : col + 1 };
}
