import pg from 'pg';
import type { ErrorFields } from '../errors/pg-error.js';
import { pgpassPassword } from './pgpass.js';
import type { QueryOutcome, ResultSet, SqlConnection } from './connection.js';

/**
 * A pgwire session to a running server, through node-postgres: it honours the PG*
 * environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE...) as
 * psql does (and ~/.pgpass through pgpass.ts), and speaks SCRAM-SHA-256 — work we would otherwise
 * re-implement. Values come back as the server's text, never converted.
 */
export class PgConnection implements SqlConnection {
  private notices: ErrorFields[] = [];

  private constructor(private readonly client: pg.Client) {
    client.on('notice', (n) => this.notices.push(fieldsOf(n)));
  }

  /** `url` may be undefined: then everything comes from the environment, as psql. */
  static async open(url: string | undefined): Promise<PgConnection> {
    const config: pg.ClientConfig = url ? { connectionString: url, application_name: 'psql' } : { application_name: 'psql' };
    const given = process.env.PGPASSWORD !== undefined || (url !== undefined && new URL(url).password !== '');
    // .pgpass is looked up here: node-postgres's own lookup is deprecated.
    const client: pg.Client = new pg.Client(
      given
        ? config
        : { ...config, password: async () => pgpassPassword(client.host, client.port, client.database ?? '', client.user ?? '', (w) => process.stderr.write(`warning: ${w}\n`)) ?? '' },
    );
    client.on('error', () => {}); // a dropped connection surfaces as the next query's error
    await client.connect();
    return new PgConnection(client);
  }

  async query(sql: string): Promise<QueryOutcome> {
    this.notices = [];
    const outcome: QueryOutcome = { notices: this.notices, results: [], error: null };
    try {
      const res = await this.client.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
      for (const r of (Array.isArray(res) ? res : [res]) as pg.QueryArrayResult[]) outcome.results.push(resultOf(r));
    } catch (err) {
      outcome.error = fieldsOf(err as pg.DatabaseError);
    }
    return outcome;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

function resultOf(r: pg.QueryArrayResult): ResultSet {
  const columns = r.fields.length > 0 || r.command === 'SELECT' || r.command === 'SHOW' ? r.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })) : null;
  const counted = r.command === 'SELECT' || r.command === 'INSERT' || r.command === 'UPDATE' || r.command === 'DELETE';
  return { columns, rows: r.rows as (string | null)[][], tag: counted ? `${r.command} ${r.rowCount ?? 0}` : (r.command ?? '') };
}

function fieldsOf(e: { message?: string }): ErrorFields {
  const d = e as Partial<pg.DatabaseError>;
  const message = e.message ?? '';
  // Not a server error (connection refused, dropped): connection_failure.
  if (!d.code) return { severity: 'ERROR', code: '08006', message };
  return {
    severity: d.severity ?? 'ERROR',
    code: d.code,
    message,
    detail: d.detail,
    hint: d.hint,
    position: d.position ? Number(d.position) : undefined,
  };
}
