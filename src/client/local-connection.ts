import type { Engine } from '../engine/engine.js';
import { EngineSession } from '../engine/session.js';
import { passwordPrincipal } from '../engine/credentials.js';
import { asPgError, errorFields, PgError, type ErrorFields } from '../errors/pg-error.js';
import type { Column, ResultSink } from '../wire/handler.js';
import type { QueryOutcome, ResultSet, SqlConnection } from './connection.js';

/**
 * A session on an in-process engine, opened as a catalog user without a password: the
 * process already holds the catalog (offline `apply`/`dump` took the data directory's
 * lock). Same executor, same statements as over pgwire.
 */
export class LocalConnection implements SqlConnection {
  private constructor(private readonly session: EngineSession) {}

  /** A connection over a session that is already open (an HTTP request's). */
  static over(session: EngineSession): LocalConnection {
    return new LocalConnection(session);
  }

  static open(engine: Engine, userName: string, database = 'default'): LocalConnection {
    const user = engine.catalog.userByName(userName);
    if (!user) throw new PgError('undefined_object', `user "${userName}" does not exist`);
    // What psql sends at startup, so SHOW output matches a psql session exactly.
    const params = new Map([
      ['application_name', 'psql'],
      ['client_encoding', 'UTF8'],
    ]);
    const session = EngineSession.open(engine, passwordPrincipal(user, engine.catalog, engine.clock()), { user: userName, database, params }, { address: 'local', port: 0, tls: false });
    return new LocalConnection(session);
  }

  async query(sql: string): Promise<QueryOutcome> {
    const outcome: QueryOutcome = { notices: [], results: [], error: null };
    let current: ResultSet | null = null;
    const sink: ResultSink = {
      rowDescription(columns: Column[]) {
        current = { columns: columns.map((c) => ({ name: c.name, typeOid: c.typeOid })), rows: [], tag: '' };
      },
      dataRow(values) {
        current!.rows.push([...values]);
        return true;
      },
      drain: async () => {},
      commandComplete(tag) {
        outcome.results.push({ ...(current ?? { columns: null, rows: [] }), tag });
        current = null;
      },
      emptyQuery() {},
      notice(n: ErrorFields) {
        outcome.notices.push(n);
      },
    };
    try {
      await this.session.simpleQuery(sql, sink);
    } catch (err) {
      outcome.error = errorFields(asPgError(err));
    }
    return outcome;
  }

  async close(): Promise<void> {
    this.session.close();
  }
}
