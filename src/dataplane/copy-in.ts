/**
 * COPY ... FROM STDIN on PGlite. PGlite runs the backend only while a call hands it input:
 * a COPY FROM STDIN whose data is not in the same `execProtocolRaw` call reads end of input,
 * and the backend exits (FATAL, the instance is gone, and with it an in-memory database).
 * So the embedded lease recognises the statement with PostgreSQL's own parser
 * (libpg-query), answers the client's CopyInResponse itself, keeps the CopyData messages
 * until CopyDone or CopyFail, and hands PGlite the Query and its data in one call.
 */

type LibPgQuery = typeof import('libpg-query');

let loading: Promise<LibPgQuery> | null = null;

/** PostgreSQL's parser, loaded once on first need. */
export function sqlParser(): Promise<LibPgQuery> {
  loading ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    return m;
  });
  return loading;
}

export interface CopyIn {
  /** The table as SQL (`"s"."t"`), for looking up its columns. */
  table: string;
  /** Columns named in the statement, or null for all of the table's. */
  columns: number | null;
  binary: boolean;
}

interface CopyStmtNode {
  relation?: { schemaname?: string; relname?: string };
  attlist?: unknown[];
  is_from?: boolean;
  filename?: string;
  is_program?: boolean;
  options?: { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[];
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * The COPY FROM STDIN statements in a simple-protocol Query's text, in order (usually none).
 * Texts that do not mention COPY at all are not parsed; texts that do not parse are left to
 * PostgreSQL (which reports the syntax error without reading any data).
 */
export function copyFromStdin(pg: LibPgQuery, text: string): CopyIn[] {
  if (!text.toLowerCase().includes('copy')) return [];
  let parsed: { stmts?: { stmt?: { CopyStmt?: CopyStmtNode } }[] };
  try {
    parsed = pg.parseSync(text) as typeof parsed;
  } catch {
    return [];
  }
  const out: CopyIn[] = [];
  for (const s of parsed.stmts ?? []) {
    const c = s.stmt?.CopyStmt;
    if (!c || !c.is_from || c.filename !== undefined || c.is_program) continue;
    const rel = c.relation ?? {};
    const table = [rel.schemaname, rel.relname].filter((x): x is string => x !== undefined).map(quoteIdent).join('.');
    const binary = (c.options ?? []).some((o) => o.DefElem?.defname === 'format' && o.DefElem.arg?.String?.sval?.toLowerCase() === 'binary');
    out.push({ table, columns: c.attlist ? c.attlist.length : null, binary });
  }
  return out;
}

/** A CopyInResponse: overall format, then one format code per column (all the same in COPY). */
export function copyInResponse(columns: number, binary: boolean): Uint8Array {
  const body = Buffer.alloc(1 + 2 + 2 * columns);
  body.writeInt8(binary ? 1 : 0, 0);
  body.writeInt16BE(columns, 1);
  for (let i = 0; i < columns; i++) body.writeInt16BE(binary ? 1 : 0, 3 + 2 * i);
  const head = Buffer.alloc(5);
  head.write('G', 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** An ErrorResponse frame (severity ERROR) with a SQLSTATE and a message. */
export function errorResponse(code: string, message: string): Uint8Array {
  const field = (t: string, v: string) => Buffer.concat([Buffer.from(t, 'latin1'), Buffer.from(v, 'utf8'), Buffer.from([0])]);
  const body = Buffer.concat([field('S', 'ERROR'), field('V', 'ERROR'), field('C', code), field('M', message), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}
