import type { ErrorFields } from '../errors/pg-error.js';

/**
 * What the command-line tools apply and dump need of a session: send one query string,
 * get back what psql would see — notices, each result's columns, rows (as text) and tag,
 * or the error. Two implementations: LocalConnection drives an in-process engine session
 * (offline on --data); PgConnection talks pgwire to a running server (--url). The tools
 * cannot tell them apart. (`golden` speaks pgwire as psql does: src/psql/wire.ts.)
 */
export interface ResultSet {
  /** null for a command that returns no rows. */
  columns: { name: string; typeOid: number }[] | null;
  rows: (string | null)[][];
  tag: string;
}

export interface QueryOutcome {
  /** Notices and warnings, in the order they arrived (before the results, as psql shows them). */
  notices: ErrorFields[];
  results: ResultSet[];
  error: ErrorFields | null;
}

export interface SqlConnection {
  query(sql: string): Promise<QueryOutcome>;
  close(): Promise<void>;
}

/** Throws the outcome's error (for tools that stop at the first one). */
export class QueryFailed extends Error {
  constructor(readonly fields: ErrorFields) {
    super(fields.message);
  }
}

export function rowsOf(outcome: QueryOutcome): (string | null)[][] {
  if (outcome.error) throw new QueryFailed(outcome.error);
  return outcome.results.flatMap((r) => r.rows);
}
