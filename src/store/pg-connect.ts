import pg from 'pg';

/**
 * Connecting to the PostgreSQL a catalog lives in, from a libpq connection string: a URL
 * (`postgres://user:pw@a:5432,b:5432/db?target_session_attrs=read-write`) or keyword/value
 * pairs (`host=a,b port=5432 dbname=db target_session_attrs=read-write`).
 *
 * node-postgres (8.x) takes one host and knows neither form's host lists nor
 * `target_session_attrs`, so they are done here as libpq does them (libpq docs, 34.1.1.3
 * "Specifying Multiple Hosts"): hosts are tried in the order given; the first that accepts
 * the connection and, with `target_session_attrs=read-write`, is not read-only
 * (`transaction_read_only` off; `primary`: not in recovery) is used. Everything else in
 * the string (user, password, database, sslmode, sslrootcert, ...) is node-postgres's to
 * read, for each host in turn.
 */

export type SessionAttrs = 'any' | 'read-write' | 'primary';

export interface ConnectPlan {
  /** One connection string per host, in the order they are tried. */
  readonly hosts: readonly { url: string; name: string }[];
  readonly sessionAttrs: SessionAttrs;
  /** Seconds to wait for one host (connect_timeout; libpq waits forever, we do not: a failover must move on). */
  readonly connectTimeoutSeconds: number;
  /** The string without its password (logs, the start-up line). */
  readonly safe: string;
}

const DEFAULT_CONNECT_TIMEOUT_S = 10;
const SESSION_ATTRS = ['any', 'read-write', 'primary'];

export function parseConnectionString(text: string): ConnectPlan {
  const s = text.trim();
  return /^postgres(ql)?:\/\//i.test(s) ? parseUrl(s) : parseKeywords(s);
}

/** `postgres://[userinfo@]host[:port][,host[:port]...][/db][?params]`. */
function parseUrl(s: string): ConnectPlan {
  const m = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(s);
  if (!m) throw new Error('the catalog URL is not a postgres:// URL');
  const [, scheme, userinfo, hostlist, path = '', query = ''] = m;
  const params = new URLSearchParams(query.slice(1));
  const attrs = sessionAttrs(params.get('target_session_attrs'));
  const timeout = connectTimeout(params.get('connect_timeout'));
  params.delete('target_session_attrs');
  const rest = params.toString();
  const hosts = splitHosts(hostlist ?? '').map((h) => ({
    url: `${scheme}${userinfo !== undefined ? `${userinfo}@` : ''}${h}${path}${rest ? `?${rest}` : ''}`,
    name: h || 'localhost',
  }));
  const safe = s.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/i, '$1@').replace(/([?&]password=)[^&]*/i, '$1');
  return { hosts, sessionAttrs: attrs, connectTimeoutSeconds: timeout, safe };
}

/** `host,host` with optional ports; an IPv6 address in brackets. */
function splitHosts(list: string): string[] {
  const out: string[] = [];
  for (const part of list.split(',')) {
    if (!/^(\[[0-9a-fA-F:.%]+\]|[^\[\]:]*)(:\d*)?$/.test(part)) throw new Error(`the catalog URL has a host it cannot read: "${part}"`);
    out.push(part);
  }
  return out;
}

/** libpq's keyword/value form: `key=value` pairs, values quoted with '...' (\' and \\ escaped). */
function parseKeywords(s: string): ConnectPlan {
  const kv = new Map<string, string>();
  const re = /\s*([a-zA-Z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s']*)/y;
  let at = 0;
  while (at < s.length) {
    if (/^\s*$/.test(s.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw new Error('the catalog connection string is neither a postgres:// URL nor key=value pairs');
    kv.set(m[1]!.toLowerCase(), m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!);
    at = re.lastIndex;
  }
  const hosts = (kv.get('host') ?? kv.get('hostaddr') ?? 'localhost').split(',');
  const ports = (kv.get('port') ?? '').split(',');
  if (ports.length > 1 && ports.length !== hosts.length) throw new Error(`the catalog connection string names ${hosts.length} hosts and ${ports.length} ports`);
  const attrs = sessionAttrs(kv.get('target_session_attrs') ?? null);
  const timeout = connectTimeout(kv.get('connect_timeout') ?? null);
  const user = kv.get('user');
  const password = kv.get('password');
  const userinfo = user !== undefined ? `${encodeURIComponent(user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}@` : '';
  const params = new URLSearchParams();
  for (const [k, v] of kv) if (!['host', 'hostaddr', 'port', 'user', 'password', 'dbname', 'target_session_attrs'].includes(k)) params.set(k, v);
  const rest = params.toString();
  const db = kv.has('dbname') ? `/${encodeURIComponent(kv.get('dbname')!)}` : '';
  return {
    hosts: hosts.map((h, i) => {
      const port = ports.length > 1 ? ports[i] : ports[0];
      const host = h.includes(':') ? `[${h}]` : h;
      const name = `${host}${port ? `:${port}` : ''}`;
      return { url: `postgres://${userinfo}${name}${db}${rest ? `?${rest}` : ''}`, name };
    }),
    sessionAttrs: attrs,
    connectTimeoutSeconds: timeout,
    safe: s.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)/i, '$1'),
  };
}

function sessionAttrs(v: string | null): SessionAttrs {
  if (v === null || v === '') return 'any';
  if (!SESSION_ATTRS.includes(v)) throw new Error(`target_session_attrs=${v} is not supported for the catalog (it is written to): use read-write, primary or any`);
  return v as SessionAttrs;
}

function connectTimeout(v: string | null): number {
  if (v === null || v === '') return DEFAULT_CONNECT_TIMEOUT_S;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`connect_timeout=${v} is not a whole number of seconds`);
  return n === 0 ? DEFAULT_CONNECT_TIMEOUT_S : Math.max(2, n); // libpq: 0 is no limit, 1 means 2
}

/**
 * Connects to the first host of `plan` that takes the connection and suits its
 * `target_session_attrs`; fails naming every host's reason.
 */
export async function connectCatalog(plan: ConnectPlan, applicationName: string): Promise<pg.Client> {
  const reasons: string[] = [];
  let last: Error | null = null;
  for (const h of plan.hosts) {
    const c = new pg.Client({ connectionString: h.url, application_name: applicationName, connectionTimeoutMillis: plan.connectTimeoutSeconds * 1000, keepAlive: true });
    // Until the caller puts its own: an error on an idle connection must not crash the process.
    c.on('error', () => {});
    try {
      await c.connect();
      if (plan.sessionAttrs !== 'any') {
        const r = await c.query<{ recovery: boolean; ro: string }>(`SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro`);
        const row = r.rows[0]!;
        const unfit = plan.sessionAttrs === 'primary' ? row.recovery : row.ro === 'on';
        if (unfit) {
          reasons.push(`${h.name}: ${row.recovery ? 'a standby (in recovery)' : 'read-only'}, not ${plan.sessionAttrs}`);
          await c.end().catch(() => undefined);
          continue;
        }
      }
      return c;
    } catch (err) {
      last = err as Error;
      reasons.push(`${h.name}: ${last.message}`);
      await c.end().catch(() => undefined);
    }
  }
  // One host: its own error, as node-postgres gave it (with its SQLSTATE, when it has one).
  if (plan.hosts.length === 1 && last) throw last;
  throw new Error(`no host of the catalog's connection string could be used (${reasons.join('; ')})`);
}

/**
 * One connection, made on first use and again after it broke; concurrent first uses share
 * one attempt. `end` closes it for good.
 */
export class LazyConnection {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private ended = false;

  constructor(
    private readonly plan: ConnectPlan,
    private readonly applicationName: string,
  ) {}

  get(): Promise<pg.Client> {
    if (this.ended) return Promise.reject(new Error('the catalog is closed'));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= connectCatalog(this.plan, this.applicationName)
      .then(async (c) => {
        if (this.ended) {
          await c.end().catch(() => undefined);
          throw new Error('the catalog is closed');
        }
        // A broken connection is replaced at the next use; its error is that statement's.
        const lost = () => {
          if (this.client === c) this.client = null;
        };
        c.on('error', lost);
        c.on('end', lost);
        this.client = c;
        return c;
      })
      .finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Drops the connection (it is made again at the next use). */
  reset(): void {
    const c = this.client;
    this.client = null;
    void c?.end().catch(() => undefined);
  }

  async end(): Promise<void> {
    this.ended = true;
    const c = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}
