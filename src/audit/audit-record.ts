import { hash as digest } from 'node:crypto';

/**
 * One audit record: who did what, from where, and how it ended. Never a
 * secret: statement text is redacted before it gets here, and login reasons name key ids,
 * never keys.
 */
export type AuditEntry =
  | {
      kind: 'login';
      /** Milliseconds since the epoch. */
      at: number;
      /** The tenant of the principal, when the login named a known one (null: superuser only). */
      tenant: number | null;
      method: string;
      via: 'pgwire' | 'http';
      principal: string;
      address: string;
      ok: boolean;
      /** The real reason of a failure (the client heard only "authentication failed"). */
      reason?: string;
      /** HTTP: successful requests of this credential from this address since its previous record (not recorded one by one). */
      repeats?: number;
    }
  | ({
      kind: 'change';
      /** The statement as written, string literals that carry secrets replaced. */
      text: string;
    } & StatementFields)
  | ({
      kind: 'denial';
      /** The 42501's message. */
      reason: string;
    } & StatementFields);

/** What a change and a denial both say: who, from where, which statement, on what. */
interface StatementFields {
  at: number;
  tenant: number | null;
  actor: string;
  address: string;
  /** The statement kind (CreateUser, Grant, ...). */
  statement: string;
  object: string;
}

/**
 * A record as stored: the entry, its place in the chain, and its hash; a change's record
 * also names its catalog commit (the log record that carried it until it got here).
 */
export type AuditRecord = AuditEntry & { seq: number; prev: string; commit?: number; hash: string };

export const GENESIS = '0'.repeat(64);
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/**
 * The stored text of a record: its JSON (with `seq` and `prev`, the previous record's hash)
 * and then its own hash, SHA-256 of everything before it. Editing any byte breaks that
 * hash; removing or reordering records breaks the next record's `prev` or `seq`.
 */
export function sealRecord(entry: AuditEntry, seq: number, prev: string, commit: number | null = null): { text: string; hash: string } {
  const body = JSON.stringify(commit === null ? { seq, prev, ...entry } : { seq, prev, commit, ...entry });
  const hash = digest('sha256', body, 'hex');
  return { text: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** The catalog commit a stored record names (it comes right after `prev`), or null. */
export function commitOf(text: string): number | null {
  const m = /^\{"seq":\d+,"prev":"[0-9a-f]{64}","commit":(\d+),/.exec(text);
  return m ? Number(m[1]) : null;
}

/** A stored record checked on its own (its hash), or what is wrong with it. */
export function readRecord(text: string): AuditRecord | string {
  const m = HASH_SUFFIX.exec(text);
  if (!m) return 'the record has no hash';
  const body = `${text.slice(0, m.index)}}`;
  if (digest('sha256', body, 'hex') !== m[1]) return 'the record does not match its hash (edited)';
  try {
    return JSON.parse(text) as AuditRecord;
  } catch {
    return 'the record is not valid JSON';
  }
}
