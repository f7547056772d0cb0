import type { Column, Execution } from '../wire/handler.js';
import { TypeOid } from '../wire/messages.js';

/** Builders for statement results. */

const NO_ROWS: Iterator<(string | null)[]> = { next: () => ({ done: true, value: undefined }) };

export const commandDone = (tag: string): Execution => ({ columns: null, rows: NO_ROWS, tag, withCount: false });

export const emptyStatement = (): Execution => ({ columns: null, rows: NO_ROWS, tag: '', withCount: false, empty: true });

export const rowsResult = (columns: Column[], rows: Iterator<(string | null)[]>, tag: string, withCount: boolean): Execution => ({
  columns,
  rows,
  tag,
  withCount,
});

export const col = (name: string, type: keyof typeof TypeOid = 'text'): Column => ({ name, typeOid: TypeOid[type] });

export const bool = (b: boolean): string => (b ? 't' : 'f');
