import { formatMessage, formatTable, type MessageFields, type Verbosity } from './print.js';
import { readScript, ScriptInput } from './script.js';
import type { PsqlQueryOutcome, PsqlWire } from './wire.js';

/**
 * Runs a script as `psql -X -a -q` does and returns what psql would print (stdout and
 * stderr as one stream, the way pg_regress collects them): every input line echoed, then
 * for each query its notices, its result tables, COPY's output and its error, in the order
 * psql 15 prints them. COPY ... FROM STDIN reads its data from the script, as psql does.
 * Meta-commands: \set (with VERBOSITY and ON_ERROR_STOP), \unset, \echo, \q, and \c /
 * \connect [database [user]] (a new connection, as the same user with the same password).
 */
export interface ScriptRun {
  output: string;
  /** psql's exit status: 0, 3 when ON_ERROR_STOP stopped the script, 2 when the connection was lost. */
  status: number;
}

/** Opens the script's connections: the first, then one for each \c. */
export interface ScriptTarget {
  /** The login user (what `\c db -` keeps). */
  readonly user: string;
  connect(database?: string): Promise<PsqlWire>;
}

const LOST = 'server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n';

export async function runLikePsql(text: string, target: ScriptTarget): Promise<ScriptRun> {
  const vars = new Map<string, string>([['VERBOSITY', 'default']]);
  const input = new ScriptInput(text);
  let conn = await target.connect();
  let out = '';
  try {
    for (const item of readScript(input)) {
      switch (item.kind) {
        case 'line':
          out += `${item.text}\n`;
          break;
        case 'query': {
          const r = await conn.query(item.sql, () => input.next()?.text ?? null);
          const printed = printOutcome(r, item.sql, verbosityOf(vars));
          out += printed.text;
          if (r.lost) return { output: `${out}connection to server was lost\n`, status: 2 };
          if (printed.failed && isOn(vars.get('ON_ERROR_STOP'))) return { output: out, status: 3 };
          break;
        }
        case 'meta': {
          const args = splitArgs(item.args);
          switch (item.name) {
            case 'set':
              if (args.length > 0) vars.set(args[0]!, args.slice(1).join(''));
              break;
            case 'unset':
              if (args.length > 0) vars.delete(args[0]!);
              break;
            case 'echo':
              out += args[0] === '-n' ? args.slice(1).join(' ') : `${args.join(' ')}\n`;
              break;
            case 'c':
            case 'connect': {
              const [db, user] = args;
              if (user !== undefined && user !== '-' && user !== target.user) {
                // Only the password of the script's own user is known (PGPASSWORD): another
                // user's login fails as it would for psql, and the previous connection stays.
                out += `\\connect: connection to another user ("${user}") is not supported in golden files; use SET SESSION AUTHORIZATION\nPrevious connection kept\n`;
                break;
              }
              let next: PsqlWire;
              try {
                next = await target.connect(db === undefined || db === '-' ? undefined : db);
              } catch (err) {
                out += `\\connect: ${(err as Error).message}\nPrevious connection kept\n`;
                if (isOn(vars.get('ON_ERROR_STOP'))) return { output: out, status: 3 };
                break;
              }
              conn.close();
              conn = next;
              break;
            }
            case 'q':
            case 'quit':
              return { output: out, status: 0 };
            default:
              out += `invalid command \\${item.name}\n`; // psql adds "Try \\? for help." only interactively
          }
          break;
        }
      }
    }
    return { output: out, status: 0 };
  } finally {
    conn.close();
  }
}

/**
 * psql 15 (ExecQueryAndProcessResults) fetches the next result before it prints the
 * current one, so the notices that arrive before result k+1 is complete are printed
 * before result k's table; those after the last result, before the last result.
 */
function printOutcome(r: PsqlQueryOutcome, sql: string, verbosity: Verbosity): { text: string; failed: boolean } {
  const notices = (ns: MessageFields[]) => ns.map((n) => formatMessage(n, sql, verbosity, 'notice')).join('');
  let text = '';
  let failed = false;
  const n = r.results.length;
  if (n === 0) text += notices(r.trailing);
  else text += notices(r.results[0]!.notices);
  for (let i = 0; i < n; i++) {
    text += notices(i + 1 < n ? r.results[i + 1]!.notices : r.trailing);
    const res = r.results[i]!.result;
    switch (res.kind) {
      case 'result':
        if (res.columns) text += formatTable(res);
        break;
      case 'copyOut':
        text += res.data;
        break;
      case 'error':
        failed = true;
        text += formatMessage(res.error, sql, verbosity, 'error');
        break;
      case 'empty':
        break;
    }
  }
  if (r.lost) {
    failed = true;
    text += LOST;
  }
  return { text, failed };
}

function verbosityOf(vars: Map<string, string>): Verbosity {
  const v = (vars.get('VERBOSITY') ?? 'default').toLowerCase();
  return v === 'verbose' || v === 'terse' || v === 'sqlstate' ? v : 'default';
}

const isOn = (v: string | undefined) => v !== undefined && /^(on|true|yes|1)$/i.test(v);

/** Meta-command arguments: whitespace-separated; 'single quotes' group and are removed. */
function splitArgs(s: string): string[] {
  const args: string[] = [];
  const re = /'((?:[^'\\]|''|\\.)*)'|(\S+)/g;
  for (const m of s.matchAll(re)) {
    if (m[1] !== undefined) args.push(m[1].replace(/''/g, "'").replace(/\\n/g, '\n').replace(/\\(.)/g, '$1'));
    else args.push(m[2]!);
  }
  return args;
}
