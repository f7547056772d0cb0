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
