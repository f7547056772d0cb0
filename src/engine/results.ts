import type { Column, Execution } from '../wire/handler.js';
import { TypeOid } from '../wire/messages.js';

/** Builders for statement results. */

const NO_ROWS: Iterator<readonly (string | null)[]> = { next: () => ({ done: true, value: undefined }) };

export const commandDone = (tag: string): Execution => ({ columns: null, rows: NO_ROWS, tag, withCount: false });

export const emptyStatement = (): Execution => ({ columns: null, rows: NO_ROWS, tag: '', withCount: false, empty: true });

export const rowsResult = (columns: Column[], rows: Iterator<readonly (string | null)[]>, tag: string, withCount: boolean): Execution => ({
  columns,
  rows,
  tag,
  withCount,
});

export const col = (name: string, type: keyof typeof TypeOid = 'text'): Column => ({ name, typeOid: TypeOid[type] });

export const bool = (b: boolean): string => (b ? 't' : 'f');

export type Row = readonly (string | null)[];

/**
 * A catalog object's row, made once and kept while the object lives: catalog rows are
 * replaced on change, never edited in place, so the object itself is the cache key, plus
 * `context` for whatever else the row shows (a time zone, a tenant's name). The row comes
 * back frozen, which lets the wire layer keep its encoding as well (ResultSink.dataRow).
 */
export function memoRow<K extends object>(cache: WeakMap<K, { context: string; row: Row }>, of: K, context: string, make: () => (string | null)[]): Row {
  const hit = cache.get(of);
  if (hit && hit.context === context) return hit.row;
  const row = Object.freeze(make());
  cache.set(of, { context, row });
  return row;
}

/** Results of up to this many rows are kept whole by `memoResult`; longer ones just stream. */
export const MEMO_RESULT_ROWS = 1000;

/**
 * A small result kept whole while what it was computed from stays the same. `stamp` names
 * that state (table versions, settings), or is null when it cannot be named (a transaction's
 * own changes); `of` is whom the rows were computed for (the cache is theirs alone). The
 * first run streams as usual and keeps the rows if the stamp did not move meanwhile; later
 * runs return them as a frozen block (Execution.block), which the wire layer encodes once.
 */
export function memoResult<K extends object>(
  cache: WeakMap<K, { stamp: string; rows: readonly Row[] }>,
  of: K,
  stamp: () => string | null,
  result: { columns: Column[]; tag: string; withCount: boolean },
  make: () => Iterator<Row>,
): Execution {
  const before = stamp();
  const hit = before === null ? undefined : cache.get(of);
  if (hit && hit.stamp === before) return { ...result, rows: hit.rows[Symbol.iterator](), block: hit.rows };
  const source = make();
  if (before === null) return { ...result, rows: source };
  let kept: Row[] | null = [];
  const rows: Iterator<Row> = {
    next() {
      const r = source.next();
      if (r.done) {
        if (kept && stamp() === before) cache.set(of, { stamp: before, rows: Object.freeze(kept) });
        kept = null;
      } else if (kept) {
        if (kept.length < MEMO_RESULT_ROWS) kept.push(r.value);
        else kept = null;
      }
      return r;
    },
  };
  return { ...result, rows };
}
