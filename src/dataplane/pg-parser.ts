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
