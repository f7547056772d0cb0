import type { SqlConnection } from '../client/connection.js';
import { formatMessage, formatTable, type Verbosity } from './print.js';
import { readScript } from './script.js';

/**
 * Runs a script as `psql -X -a -q` does and returns what psql would print (stdout and
 * stderr as one stream, the way pg_regress collects them): every input line echoed, then
 * for each query its notices, its result tables and its error. Meta-commands: \set (with
 * VERBOSITY and ON_ERROR_STOP), \unset, \echo, \q.
 */
export interface ScriptRun {
  output: string;
  /** psql's exit status: 0, or 3 when ON_ERROR_STOP stopped the script. */
  status: number;
}

export async function runLikePsql(text: string, conn: SqlConnection): Promise<ScriptRun> {
  const vars = new Map<string, string>([['VERBOSITY', 'default']]);
  let out = '';
  for (const item of readScript(text)) {
    switch (item.kind) {
      case 'line':
        out += `${item.text}\n`;
        break;
      case 'query': {
        const r = await conn.query(item.sql);
        const verbosity = verbosityOf(vars);
        for (const n of r.notices) out += formatMessage(n, item.sql, verbosity);
        for (const res of r.results) if (res.columns) out += formatTable(res);
        if (r.error) {
          out += formatMessage(r.error, item.sql, verbosity);
          if (isOn(vars.get('ON_ERROR_STOP'))) return { output: out, status: 3 };
        }
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
