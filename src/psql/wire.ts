import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { decodeBackend, readyStatus } from '../dataplane/frames.js';
import { PgRawConnection, type PgTarget } from '../dataplane/pg-raw.js';
import type { ResultSet } from '../client/connection.js';
import type { MessageFields } from './print.js';

/**
 * The connection `portcullis golden` runs a script on: pgwire, simple query protocol, as
 * psql 15 sends a script's queries (`PQexec`), with what psql needs that a driver hides —
 * every field of errors and notices, the order notices arrive in between results, and COPY
 * in both directions. Startup and authentication are PgRawConnection's (SCRAM and the rest).
 */

/** One result of a query, as libpq hands them to psql one by one. */
export type PsqlResult =
  /** Rows (a result with a RowDescription), or a command's completion (columns null). */
  | ({ kind: 'result' } & ResultSet)
  | { kind: 'error'; error: MessageFields }
  /** COPY ... TO STDOUT: the data as psql writes it out. */
  | { kind: 'copyOut'; data: string }
  | { kind: 'empty' };

export interface PsqlQueryOutcome {
  /**
   * The results in order, each with the notices that arrived after the previous result
   * was complete and before this one was (psql prints them at different moments).
   */
  results: { notices: MessageFields[]; result: PsqlResult }[];
  /** Notices after the last result, before ReadyForQuery. */
  trailing: MessageFields[];
  /** The connection ended during the query (a FATAL error, the server went away). */
  lost: boolean;
}

/**
 * Where COPY FROM STDIN reads its data: the next line of the script, or null at its end.
 * The line `\.` ends the data (and is not sent).
 */
export type CopyInput = () => string | null;

/** Startup parameters as psql sends them (with PGCLIENTENCODING=UTF8 and PGTZ=UTC, as the golden files are run). */
export const PSQL_STARTUP = { application_name: 'psql', timezone: 'UTC' } as const;

export class PsqlWire {
  private constructor(private readonly conn: PgRawConnection) {}

  static async connect(target: PgTarget, database = target.database): Promise<PsqlWire> {
    return new PsqlWire(await PgRawConnection.connect(target, database, { ...PSQL_STARTUP }));
  }

  async query(sql: string, copyIn: CopyInput): Promise<PsqlQueryOutcome> {
    const outcome: PsqlQueryOutcome = { results: [], trailing: [], lost: false };
    let notices: MessageFields[] = [];
    let current: ResultSet | null = null;
    let copyOut: string | null = null;
    const push = (result: PsqlResult) => {
      outcome.results.push({ notices, result });
      notices = [];
    };
    this.conn.write(serialize.query(sql));
    for (;;) {
      let frame: Uint8Array;
      try {
        frame = await this.conn.next();
      } catch {
        outcome.lost = true;
        break;
      }
      if (readyStatus(frame)) break;
      const m = decodeBackend([frame])[0]! as BackendMessage & Record<string, unknown>;
      switch (m.name) {
        case 'rowDescription':
          current = { columns: (m.fields as { name: string; dataTypeID: number }[]).map((f) => ({ name: f.name, typeOid: f.dataTypeID })), rows: [], tag: '' };
          break;
        case 'dataRow':
          current?.rows.push(m.fields as (string | null)[]);
          break;
        case 'commandComplete':
          if (copyOut !== null) {
            push({ kind: 'copyOut', data: copyOut });
            copyOut = null;
          } else push({ kind: 'result', ...(current ?? { columns: null, rows: [] }), tag: m.text as string });
          current = null;
          break;
        case 'emptyQuery':
          push({ kind: 'empty' });
          break;
        case 'error':
          current = null;
          copyOut = null;
          push({ kind: 'error', error: fieldsOf(m) });
          break;
        case 'notice':
          notices.push(fieldsOf(m));
          break;
        case 'copyInResponse':
          this.sendCopyData(copyIn);
          break;
        case 'copyOutResponse':
          copyOut = '';
          break;
        case 'copyData':
          if (copyOut !== null) copyOut += (m.chunk as Buffer).toString('utf8');
          break;
        default:
          // ParameterStatus, NotificationResponse, CopyDone: nothing psql prints in a script.
          break;
      }
    }
    outcome.trailing = notices;
    return outcome;
  }

  /** psql's handleCopyIn for a script: each line as it is, until `\.` or the end. */
  private sendCopyData(copyIn: CopyInput): void {
    const frames: Buffer[] = [];
    for (let line = copyIn(); line !== null && line !== '\\.'; line = copyIn()) frames.push(serialize.copyData(Buffer.from(`${line}\n`, 'utf8')));
    frames.push(serialize.copyDone());
    this.conn.write(Buffer.concat(frames));
  }

  close(): void {
    this.conn.close();
  }
}

function fieldsOf(m: Record<string, unknown>): MessageFields {
  const s = (k: string) => (typeof m[k] === 'string' ? (m[k] as string) : undefined);
  const n = (k: string) => (typeof m[k] === 'string' && m[k] !== '' ? Number(m[k]) : undefined);
  return {
    severity: s('severity') ?? 'ERROR',
    code: s('code') ?? '',
    message: s('message') ?? '',
    detail: s('detail'),
    hint: s('hint'),
    position: n('position'),
    internalPosition: n('internalPosition'),
    internalQuery: s('internalQuery'),
    where: s('where'),
    schema: s('schema'),
    table: s('table'),
    column: s('column'),
    dataType: s('dataType'),
    constraint: s('constraint'),
    file: s('file'),
    line: s('line'),
    routine: s('routine'),
  };
}
