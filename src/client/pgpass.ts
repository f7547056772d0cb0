import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The password for host:port:database:user from ~/.pgpass (or PGPASSFILE), as libpq looks it
 * up: the first matching line wins, `*` matches anything, `\:` and `\\` are escapes, and a
 * file that others can read is ignored (libpq warns and ignores it too).
 */
export function pgpassPassword(host: string, port: number, database: string, user: string, warn: (s: string) => void): string | undefined {
  const file = process.env.PGPASSFILE || path.join(os.homedir(), '.pgpass');
  let text: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      warn(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const wanted = [host, String(port), database, user];
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = splitFields(line);
    if (fields.length < 5) continue;
    if (wanted.every((w, i) => fields[i] === '*' || fields[i] === w)) return fields.slice(4).join(':');
  }
  return undefined;
}

function splitFields(line: string): string[] {
  const out: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) field += line[++i];
    else if (c === ':') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}
