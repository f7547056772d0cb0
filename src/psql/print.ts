import type { ErrorFields } from '../errors/pg-error.js';
import type { ResultSet } from '../client/connection.js';

/**
 * psql's output, byte for byte, for what golden files contain: aligned tables with the
 * default border (fe_utils/print.c, print_aligned_text) and expanded ones (\x,
 * print_aligned_vertical), and libpq's error and notice text (fe-protocol3.c:
 * pqBuildErrorMessage3 and reportErrorPosition). Checked against real psql
 * by test/cli/golden.test.ts (the same fixtures through real psql).
 */

export type Verbosity = 'default' | 'verbose' | 'terse' | 'sqlstate';

// ---- display width (psql's pg_wcswidth: wide East Asian characters take two columns) ----

function charWidth(cp: number): number {
  if (cp === 0) return 0;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return -1;
  if (/\p{Mn}|\p{Me}|\p{Cf}/u.test(String.fromCodePoint(cp))) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe6f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x2fffd) ||
    (cp >= 0x30000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

interface CellLine {
  text: string;
  width: number;
}

/** A value as print.c's pg_wcsformat lays it out: lines, tabs expanded, controls escaped. */
function formatCell(value: string): CellLine[] {
  const lines: CellLine[] = [];
  let text = '';
  let width = 0;
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\n') {
      lines.push({ text, width });
      text = '';
      width = 0;
    } else if (ch === '\t') {
      do {
        text += ' ';
        width++;
      } while (width % 8 !== 0);
    } else if (ch === '\r') {
      text += '\\r';
      width += 2;
    } else {
      const w = charWidth(cp);
      if (w < 0) {
        text += `\\x${cp.toString(16).padStart(2, '0')}`;
        width += 4;
      } else {
        text += ch;
        width += w;
      }
    }
  }
  lines.push({ text, width });
  return lines;
}

/** psql right-aligns the numeric types (print.c column_type_alignment). */
const NUMERIC_OIDS = new Set([20, 21, 23, 26, 28, 29, 700, 701, 790, 1700, 5069]);

/** One result as `psql` prints it with the default `\pset` (aligned, border 1), then a blank line. */
export function formatTable(result: ResultSet): string {
  const columns = result.columns ?? [];
  const headers = columns.map((c) => formatCell(c.name));
  const rows = result.rows.map((r) => r.map((v) => formatCell(v ?? '')));
  const right = columns.map((c) => NUMERIC_OIDS.has(c.typeOid));
  const widths = headers.map((h, i) => Math.max(...h.map((l) => l.width), ...rows.map((r) => Math.max(...r[i]!.map((l) => l.width)))));
  const last = columns.length - 1;
  let out = '';

  // Header: every name centred, a space after even the last one.
  const headerLines = Math.max(0, ...headers.map((h) => h.length));
  for (let l = 0; l < headerLines; l++) {
    for (let i = 0; i < columns.length; i++) {
      const line = headers[i]![l];
      out += ' '; // border 1; psql's mark after a header newline is a space too
      if (line) {
        const space = widths[i]! - line.width;
        out += ' '.repeat(Math.floor(space / 2)) + line.text + ' '.repeat(Math.floor((space + 1) / 2));
        out += l < headers[i]!.length - 1 ? '+' : ' ';
      } else {
        out += ' '.repeat(widths[i]!) + ' ';
      }
      if (i < last) out += '|';
    }
    out += '\n';
  }
  out += widths.map((w) => '-'.repeat(w + 2)).join('+') + '\n';

  for (const row of rows) {
    const height = Math.max(1, ...row.map((c) => c.length));
    for (let l = 0; l < height; l++) {
      for (let i = 0; i < columns.length; i++) {
        const cell = row[i]!;
        const line = cell[l];
        const more = l < cell.length - 1; // the value goes on on the next line: "+"
        const notLast = i < last;
        out += ' ';
        if (!line) {
          if (notLast) out += ' '.repeat(widths[i]!);
        } else if (right[i]) {
          out += ' '.repeat(widths[i]! - line.width) + line.text;
        } else {
          out += line.text;
          if (notLast || more) out += ' '.repeat(widths[i]! - line.width);
        }
        if (more) out += '+';
        else if (notLast) out += ' ';
        if (notLast) out += '|';
      }
      out += '\n';
    }
  }
  const n = result.rows.length;
  out += `(${n} ${n === 1 ? 'row' : 'rows'})\n\n`;
  return out;
}

/**
 * One result as psql prints it in expanded mode (`\x`, print_aligned_vertical, border 1):
 * a `-[ RECORD n ]` rule per row, then a line per column, names padded to the widest,
 * values left-aligned; "(0 rows)" only for an empty result; then a blank line.
 */
export function formatExpanded(result: ResultSet): string {
  if (result.rows.length === 0) return '(0 rows)\n\n';
  const columns = result.columns ?? [];
  const headers = columns.map((c) => formatCell(c.name));
  const rows = result.rows.map((r) => r.map((v) => formatCell(v ?? '')));
  const hwidth = Math.max(0, ...headers.flatMap((h) => h.map((l) => l.width)));
  const dwidth = Math.max(0, ...rows.flatMap((r) => r.flatMap((c) => c.map((l) => l.width))));
  let out = '';
  rows.forEach((row, k) => {
    out += recordRule(k + 1, hwidth, dwidth);
    for (let i = 0; i < columns.length; i++) {
      const h = headers[i]!;
      const d = row[i]!;
      for (let l = 0; l < Math.max(h.length, d.length); l++) {
        const hl = h[l];
        out += hl ? hl.text + ' '.repeat(hwidth - hl.width) : ' '.repeat(hwidth);
        out += `${l < h.length - 1 ? '+' : ' '}| `;
        const dl = d[l];
        if (dl) out += l < d.length - 1 ? `${dl.text}${' '.repeat(dwidth - dl.width)}+` : dl.text;
        out += '\n';
      }
    }
  });
  return `${out}\n`;
}

/** print_aligned_vertical_line for border 1: `-[ RECORD n ]`, then dashes, a `+` over the column rule when there is room. */
function recordRule(record: number, hwidth: number, dwidth: number): string {
  const label = `[ RECORD ${record} ]`;
  let out = `-${label}`;
  let reclen = label.length + 1;
  for (let i = reclen; i < hwidth; i++) out += '-';
  reclen -= hwidth;
  if (reclen-- <= 0) out += '-';
  if (reclen-- <= 0) out += '+';
  if (reclen-- <= 0) out += '-';
  for (let i = Math.max(0, reclen); i < dwidth; i++) out += '-';
  return `${out}\n`;
}

// ---- errors and notices -------------------------------------------------------------------

/**
 * What a client receives of an ErrorResponse or NoticeResponse: portcullis's own fields,
 * and the ones PostgreSQL adds (the data plane's errors carry them).
 */
export interface MessageFields extends ErrorFields {
  internalPosition?: number | undefined;
  internalQuery?: string | undefined;
  /** CONTEXT: the call stack of the error (PL/pgSQL lines, COPY's line). */
  where?: string | undefined;
  schema?: string | undefined;
  table?: string | undefined;
  column?: string | undefined;
  dataType?: string | undefined;
  constraint?: string | undefined;
  file?: string | undefined;
  line?: string | undefined;
  routine?: string | undefined;
}

/**
 * An ErrorResponse or NoticeResponse as libpq words it (pqBuildErrorMessage3) for the query
 * it answered, with psql's default SHOW_CONTEXT (errors): CONTEXT for an error, never for a
 * notice.
 */
export function formatMessage(f: MessageFields, query: string, verbosity: Verbosity, kind: 'error' | 'notice' = 'error'): string {
  let out = `${f.severity}:  `;
  if (verbosity === 'sqlstate') return `${out}${f.code}\n`;
  if (verbosity === 'verbose') out += `${f.code}: `;
  out += f.message;
  let cursor: { text: string; at: number } | null = null;
  if (f.position !== undefined && f.position > 0) {
    if (verbosity === 'terse') out += ` at character ${f.position}`;
    else cursor = { text: query, at: f.position };
  } else if (f.internalPosition !== undefined && f.internalPosition > 0) {
    if (verbosity === 'terse' || f.internalQuery === undefined) out += ` at character ${f.internalPosition}`;
    else cursor = { text: f.internalQuery, at: f.internalPosition };
  }
  out += '\n';
  if (verbosity !== 'terse') {
    if (cursor) out += errorPosition(cursor.text, cursor.at);
    if (f.detail !== undefined) out += `DETAIL:  ${f.detail}\n`;
    if (f.hint !== undefined) out += `HINT:  ${f.hint}\n`;
    if (f.internalQuery !== undefined) out += `QUERY:  ${f.internalQuery}\n`;
    if (kind === 'error' && f.where !== undefined) out += `CONTEXT:  ${f.where}\n`;
  }
  if (verbosity === 'verbose') {
    if (f.schema !== undefined) out += `SCHEMA NAME:  ${f.schema}\n`;
    if (f.table !== undefined) out += `TABLE NAME:  ${f.table}\n`;
    if (f.column !== undefined) out += `COLUMN NAME:  ${f.column}\n`;
    if (f.dataType !== undefined) out += `DATATYPE NAME:  ${f.dataType}\n`;
    if (f.constraint !== undefined) out += `CONSTRAINT NAME:  ${f.constraint}\n`;
    if (f.routine !== undefined || f.file !== undefined || f.line !== undefined) {
      out += 'LOCATION:  ';
      if (f.routine !== undefined) out += `${f.routine}, `;
      if (f.file !== undefined && f.line !== undefined) out += `${f.file}:${f.line}`;
      out += '\n';
    }
  }
  return out;
}

const DISPLAY_SIZE = 60; // screen columns
const MIN_RIGHT_CUT = 10; // keep the caret this far from a cut end

/** "LINE n: ..." and the caret line, cut to 60 columns around the position as libpq does. */
export function errorPosition(query: string, position: number): string {
  const chars = Array.from(query.replace(/\t/g, ' '));
  const loc = position - 1;
  const scr: number[] = []; // screen column where each character starts
  let line = 1;
  let begin = 0;
  let end = -1;
  let col = 0;
  let i = 0;
  for (; i < chars.length; i++) {
    scr[i] = col;
    const ch = chars[i]!;
    if (ch === '\r' || ch === '\n') {
      if (i < loc) {
        if (ch === '\r' || i === 0 || chars[i - 1] !== '\r') line++;
        begin = i + 1;
      } else {
        end = i;
        break;
      }
    }
    const w = charWidth(ch.codePointAt(0)!);
    col += w <= 0 ? 1 : w;
  }
  if (end < 0) {
    end = i;
    scr[end] = col;
  }
  if (loc > i) return '';
  let cutBegin = false;
  let cutEnd = false;
  if (scr[end]! - scr[begin]! > DISPLAY_SIZE) {
    if (scr[begin]! + DISPLAY_SIZE >= scr[loc]! + MIN_RIGHT_CUT) {
      while (scr[end]! - scr[begin]! > DISPLAY_SIZE) end--;
      cutEnd = true;
    } else {
      while (scr[loc]! + MIN_RIGHT_CUT < scr[end]!) {
        end--;
        cutEnd = true;
      }
      while (scr[end]! - scr[begin]! > DISPLAY_SIZE) {
        begin++;
        cutBegin = true;
      }
    }
  }
  const prefix = `LINE ${line}: ${cutBegin ? '...' : ''}`;
  const text = chars.slice(begin, end).join('');
  const caret = prefix.length + scr[loc]! - scr[begin]!;
  return `${prefix}${text}${cutEnd ? '...' : ''}\n${' '.repeat(caret)}^\n`;
}
