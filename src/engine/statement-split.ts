import { scanTokens, type LibPgQuery } from '../dataplane/pg-parser.js';

/**
 * A message's statements, cut where PostgreSQL's lexer (libpg-query) finds a `;` token:
 * strings, quoted names, comments and dollar quotes hide their semicolons, as they do from
 * PostgreSQL itself. The lexer, not the parser: a message of both languages is not
 * PostgreSQL's grammar as a whole (`CREATE RLS POLICY`, `$auth.username`), but it lexes.
 * Empty pieces (`;;`, a trailing `;`, comments alone) are left out. None when the text does not lex.
 */
export interface StatementPiece {
  text: string;
  /** Where the piece starts in the message, in UTF-8 bytes. */
  byteOffset: number;
}

export function splitStatements(pg: LibPgQuery, text: string): StatementPiece[] {
  const tokens = scanTokens(pg, text);
  if (!tokens) return [];
  const bytes = Buffer.from(text, 'utf8');
  const out: StatementPiece[] = [];
  let from = 0;
  for (const t of [...tokens.filter((x) => x.text === ';'), { start: bytes.length, end: bytes.length }]) {
    const piece = bytes.subarray(from, t.start).toString('utf8');
    // Comments alone are no statement (psql sends a file's comments along with it).
    const words = tokens.some((x) => x.start >= from && x.end <= t.start && x.tokenName !== 'SQL_COMMENT' && x.tokenName !== 'C_COMMENT');
    if (words) out.push({ text: piece, byteOffset: from });
    from = t.end;
  }
  return out;
}
