import { readFileSync } from 'node:fs';
import path from 'node:path';
import { formatExpanded, formatMessage, formatTable, type MessageFields, type Verbosity } from './print.js';
import { readScript, ScriptInput } from './script.js';
import type { PsqlQueryOutcome, PsqlWire } from './wire.js';

/**
 * Runs a script as `psql -X -a -q` does and returns what psql would print (stdout and
 * stderr as one stream, the way pg_regress collects them): every input line echoed, then
 * for each query its notices, its result tables, COPY's output and its error, in the order
 * psql 15 prints them. COPY ... FROM STDIN reads its data from the script, as psql does.
 * Meta-commands: \set (with VERBOSITY and ON_ERROR_STOP), \unset, \echo, \q, \x [on|off]
 * (expanded display; auto is off, as for output that is not a terminal), \c /
 * \connect [database [user]] (a new connection, as the same user with the same password),
 * and \i / \include (a file relative to `dir`, psql's working directory) and \ir /
 * \include_relative (relative to the including file's directory; the script's is `dir`).
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

export async function runLikePsql(text: string, target: ScriptTarget, dir = process.cwd()): Promise<ScriptRun> {
  const vars = new Map<string, string>([['VERBOSITY', 'default']]);
  let expanded = false;
  let conn = await target.connect();
  let out = '';
  /** Runs one input (the script, or a file it includes); a status when the whole run ends. */
  const run = async (input: ScriptInput, here: string, top: boolean): Promise<ScriptRun | null> => {
    for (const item of readScript(input)) {
      switch (item.kind) {
        case 'line':
          out += `${item.text}\n`;
          break;
        case 'query': {
          const r = await conn.query(item.sql, () => input.next()?.text ?? null);
          const printed = printOutcome(r, item.sql, verbosityOf(vars), expanded);
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
            case 'x': {
              // psql's \x: toggles, or on / off (and auto: expanded only when wider than the terminal; here there is none).
              const v = args[0]?.toLowerCase();
              expanded = v === undefined ? !expanded : v === 'on' || v === 'true' || v === '1' || v === 'yes';
              break;
            }
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
            case 'i':
            case 'include':
            case 'ir':
            case 'include_relative': {
              const name = args[0];
              if (name === undefined) {
                out += `\\${item.name}: missing required argument\n`;
                break;
              }
              const file = path.resolve(item.name.startsWith('ir') || item.name === 'include_relative' ? here : dir, name);
              let included: string;
              try {
                included = readFileSync(file, 'utf8');
              } catch {
                out += `${name}: No such file or directory\n`;
                if (isOn(vars.get('ON_ERROR_STOP'))) return { output: out, status: 3 };
                break;
              }
              const ended = await run(new ScriptInput(included), path.dirname(file), false);
              if (ended) return ended;
              break;
            }
            case 'q':
            case 'quit':
              // "In a script file, only execution of that script is terminated" (psql's manual).
              return top ? { output: out, status: 0 } : null;
            default:
              out += `invalid command \\${item.name}\n`; // psql adds "Try \\? for help." only interactively
          }
          break;
        }
      }
    }
    return null;
  };
  try {
    return (await run(new ScriptInput(text), dir, true)) ?? { output: out, status: 0 };
  } finally {
    conn.close();
  }
}

/**
 * psql 15 (ExecQueryAndProcessResults) fetches the next result before it prints the
 * current one, so the notices that arrive before result k+1 is complete are printed
 * before result k's table; those after the last result, before the last result.
 */
function printOutcome(r: PsqlQueryOutcome, sql: string, verbosity: Verbosity, expanded: boolean): { text: string; failed: boolean } {
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
        if (res.columns) text += expanded ? formatExpanded(res) : formatTable(res);
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
