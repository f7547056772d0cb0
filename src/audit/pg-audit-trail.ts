import type pg from 'pg';
import type { AuditEntry, AuditRecord } from './audit-record.js';
import { ChainCheck, type AuditLog } from './audit-log.js';

/**
 * The audit trail of a catalog in PostgreSQL (`--catalog`): one hash chain for every
 * instance, in the table `portcullis.audit`, one row per record. The chain is made inside
 * PostgreSQL, by `portcullis.audit_append`, under a transaction-scoped advisory lock: each
 * record is numbered after the last one there and names its hash, whichever instance
 * wrote it. A commit's records are appended by the statement that inserts the commit
 * (PostgresStore), so they are durable with it and enter the chain in commit order;
 * logins and denials are appended on their own, in batches.
 *
 * A record's stored text is exactly what the embedded trail writes (audit-record.ts:
 * `{"seq":N,"prev":"…",["commit":C,]…entry…,"hash":"…"}`, the hash SHA-256 of the text
 * before `,"hash"` closed with `}`), built from the entry's JSON as JavaScript wrote it, so
 * `readRecord` checks a row as it checks a line of the file.
 */

const SCHEMA = 'portcullis';
/** Serializes appends to the chain across instances (pg_advisory_xact_lock). */
const AUDIT_LOCK = 0x70636175; // "pcau"
/** Rows read per query by verify. */
const VERIFY_BATCH = 5000;

export const AUDIT_SCHEMA_SQL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${SCHEMA}.audit (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    commit bigint,
    tenant bigint,
    instance text NOT NULL,
    record text NOT NULL,
    hash text NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS audit_commit ON ${SCHEMA}.audit (commit) WHERE commit IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS audit_tenant ON ${SCHEMA}.audit (tenant, seq)`,
  // Entries are JSON objects as JavaScript's JSON.stringify wrote them; each becomes the
  // record {"seq":…,"prev":…,["commit":…,] then the entry's own keys. Records of a commit
  // already in the chain (a start-up recovering them twice) are skipped. Returns how many
  // records it added.
  `CREATE OR REPLACE FUNCTION ${SCHEMA}.audit_append(p_instance text, p_commits bigint[], p_tenants bigint[], p_entries text[])
  RETURNS bigint LANGUAGE plpgsql AS $fn$
  DECLARE
    last_seq bigint;
    last_hash text;
    last_commit bigint;
    body text;
    h text;
    added bigint := 0;
  BEGIN
    PERFORM pg_advisory_xact_lock(${AUDIT_LOCK});
    SELECT seq, hash INTO last_seq, last_hash FROM ${SCHEMA}.audit ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
      last_seq := 0;
      last_hash := repeat('0', 64);
    END IF;
    SELECT commit INTO last_commit FROM ${SCHEMA}.audit WHERE commit IS NOT NULL ORDER BY commit DESC LIMIT 1;
    FOR i IN 1 .. coalesce(array_length(p_entries, 1), 0) LOOP
      IF p_commits[i] IS NOT NULL AND p_commits[i] <= coalesce(last_commit, 0) THEN
        CONTINUE;
      END IF;
      IF left(p_entries[i], 1) <> '{' OR length(p_entries[i]) < 3 THEN
        RAISE EXCEPTION 'audit entry % is not a JSON object', i;
      END IF;
      last_seq := last_seq + 1;
      body := '{"seq":' || last_seq || ',"prev":"' || last_hash || '",'
        || CASE WHEN p_commits[i] IS NULL THEN '' ELSE '"commit":' || p_commits[i] || ',' END
        || substr(p_entries[i], 2);
      h := encode(sha256(convert_to(body, 'UTF8')), 'hex');
      INSERT INTO ${SCHEMA}.audit (seq, commit, tenant, instance, record, hash)
        VALUES (last_seq, p_commits[i], p_tenants[i], p_instance, left(body, -1) || ',"hash":"' || h || '"}', h);
      last_hash := h;
      added := added + 1;
    END LOOP;
    RETURN added;
  END
  $fn$`,
];

/** The parameters of one `audit_append` call for `records` (see appendSql). */
export function appendParams(instance: string, records: { entry: AuditEntry; commit: number | null }[]): unknown[] {
  return [instance, records.map((r) => r.commit), records.map((r) => r.entry.tenant), records.map((r) => JSON.stringify(r.entry))];
}

/** The call, its parameters numbered from `first` (instance, commits, tenants, entries). */
export function appendSql(first: number): string {
  return `${SCHEMA}.audit_append($${first}, $${first + 1}::bigint[], $${first + 2}::bigint[], $${first + 3}::text[])`;
}

interface Queued {
  entry: AuditEntry;
  commit: number | null;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface PgAuditLink {
  /** The trail's own connection (logins wait for their record: never behind a commit). */
  connection(): Promise<pg.Client>;
  readonly instance: string;
}

export class PgAuditTrail implements AuditLog {
  private queue: Queued[] = [];
  private writing: Promise<void> | null = null;

  constructor(private readonly link: PgAuditLink) {}

  /** Queued and written with whatever else queued meanwhile (one call, one lock, one round trip). */
  append(entry: AuditEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, commit: null, resolve, reject });
      this.writing ??= this.drain().finally(() => (this.writing = null));
    });
  }

  /** Already in the chain: the statement that inserted commit `commit` appended them. */
  appendCommitted(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Records carried by commits in `portcullis.commits` itself (a catalog written before
   * the chain moved to its own table): appended once, in commit order; the function skips
   * commits already in the chain, so instances starting at once do not double them.
   */
  async recover(carried: { commit: number; entries: AuditEntry[] }[]): Promise<number> {
    if (carried.length === 0) return 0;
    const records = carried.flatMap((c) => c.entries.map((entry) => ({ entry, commit: c.commit })));
    const c = await this.link.connection();
    const r = await c.query<{ added: string }>(`SELECT ${appendSql(1)} AS added`, appendParams(this.link.instance, records));
    return Number(r.rows[0]!.added);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const c = await this.link.connection();
        await c.query(`SELECT ${appendSql(1)}`, appendParams(this.link.instance, batch));
        for (const q of batch) q.resolve();
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
  }

  async settle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** A row is durable once its statement returned (PostgreSQL's own durability: see its synchronous_commit). */
  sync(): Promise<void> {
    return this.settle();
  }

  /**
   * Read whole from PostgreSQL before the first row is sent (a statement's rows are produced
   * synchronously): SHOW AUDIT LOG without LIMIT holds the tenant's whole trail in memory.
   */
  async read(limit: number | null, tenant: number | null): Promise<Iterable<AuditRecord>> {
    await this.settle();
    const c = await this.link.connection();
    const where = tenant === null ? '' : 'WHERE tenant = $1';
    const r = await c.query<{ record: string }>(
      `SELECT record FROM (SELECT seq, record FROM ${SCHEMA}.audit ${where} ORDER BY seq DESC${limit === null ? '' : ` LIMIT ${Math.floor(limit)}`}) last ORDER BY seq`,
      tenant === null ? [] : [tenant],
    );
    return r.rows.map((row) => JSON.parse(row.record) as AuditRecord);
  }

  async close(): Promise<void> {
    await this.settle();
  }
}

export type PgVerdict = { ok: true; records: number; head: string } | { ok: false; record: number; reason: string; records: number };

/**
 * Checks the whole chain in `portcullis.audit`, read in order a batch at a time: every
 * record matching its hash, numbered one after the other, naming the previous one's hash.
 * The first record that fails is named by its place in the chain.
 */
export async function verifyPgTrail(c: pg.Client): Promise<PgVerdict> {
  const chain = new ChainCheck();
  const total = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${SCHEMA}.audit`)).rows[0]!.n);
  let after = 0;
  for (;;) {
    const r = await c.query<{ seq: string; record: string }>(`SELECT seq, record FROM ${SCHEMA}.audit WHERE seq > $1 ORDER BY seq LIMIT ${VERIFY_BATCH}`, [after]);
    for (const row of r.rows) {
      const wrong = chain.add(row.record);
      if (wrong) return { ok: false, record: chain.records + 1, reason: wrong, records: total };
    }
    if (r.rows.length < VERIFY_BATCH) return { ok: true, records: chain.records, head: chain.head };
    after = Number(r.rows.at(-1)!.seq);
  }
}
