/**
 * PostgreSQL's own parser (libpg-query: PostgreSQL's parser compiled to WASM), loaded on
 * first use: about 130 ms of import and WASM compilation on a quiet machine, paid by the
 * first statement that needs it, never at start-up.
 */
export type LibPgQuery = typeof import('libpg-query');

let loading: Promise<LibPgQuery> | null = null;

export function postgresParser(): Promise<LibPgQuery> {
  loading ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    return m;
  });
  return loading;
}

export type ParseResult = ReturnType<LibPgQuery['parseSync']>;

/** PostgreSQL's parse of `text`, or null when its parser refuses it (a syntax error). */
export function parseSql(pg: LibPgQuery, text: string): ParseResult | null {
  try {
    return pg.parseSync(text);
  } catch {
    return null;
  }
}

/** A statement of a parse: its node type (`SelectStmt`, ...) and node, and where it is (UTF-8 bytes). */
export interface ParsedStatement {
  kind: string;
  node: Record<string, unknown>;
  location: number;
  length: number | undefined;
}

export function statementsOf(parsed: ParseResult): ParsedStatement[] {
  return (parsed.stmts ?? []).map((raw) => {
    const r = raw as { stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number };
    const stmt = r.stmt ?? {};
    const kind = Object.keys(stmt)[0] ?? 'unknown';
    return { kind, node: (stmt[kind] ?? {}) as Record<string, unknown>, location: r.stmt_location ?? 0, length: r.stmt_len || undefined };
  });
}

export interface Token {
  /** UTF-8 byte offsets in the text. */
  start: number;
  end: number;
  text: string;
  tokenName: string;
}

/** PostgreSQL's tokens of `text`, or null when its lexer refuses it (an unterminated string). */
export function scanTokens(pg: LibPgQuery, text: string): Token[] | null {
  try {
    return pg.scanSync(text).tokens as Token[];
  } catch {
    return null;
  }
}

/** Calls `visit` for every object under a key (the parse tree's node types are keys). */
export function walk(node: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (value !== null && typeof value === 'object') {
        visit(key, value);
        walk(value, visit);
      }
    }
  }
}
