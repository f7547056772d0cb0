import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ConfigError, DEFAULTS, resolveConfig } from '../config/config.js';
import { startServer } from '../server.js';
import { formatVerifier, makeVerifier } from '../auth/verifier.js';
import { PRODUCT_VERSION } from '../engine/settings.js';
import { golden, goldenFiles } from '../golden/golden.js';
import { applyFiles, ApplyFailed } from '../apply/apply.js';
import { openTarget } from '../client/open.js';
import { Engine } from '../engine/engine.js';
import { LOG_FILE, type LogStore } from '../store/log-store.js';
import { rekeyJwksCache } from '../auth/jwks.js';
import { formatKeyId, keysOf, readKeyFile, type Keys } from '../store/cipher.js';
import { dataDirOptions } from '../engine/data-dir.js';
import { AUDIT_FILE, AuditTrail, verifyTrail } from '../audit/audit-trail.js';
import { verifyPgTrail } from '../audit/pg-audit-trail.js';
import { connectCatalog, parseConnectionString } from '../store/pg-connect.js';
import { CATALOG_SCHEMA } from '../store/postgres-store.js';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const HELP = `portcullis ${PRODUCT_VERSION} — identity and access control for databases, in SQL over pgwire

Usage:
  portcullis serve [options]       start the server
  portcullis apply [FILE...]       apply DDL files, each in one transaction (none, or -: standard input)
  portcullis dump                  write the whole catalog as a script apply restores
  portcullis compact --data DIR    snapshot the catalog and empty its log (offline)
  portcullis audit verify --data DIR | --catalog URL
                                   check the audit trail's hash chain; names the first bad record
  portcullis rekey --data DIR --new-key-file FILE [--encryption-key-file OLD]
                                   re-encrypt the data directory under a new key (offline)
  portcullis golden [PATH...]      pg_regress-style golden tests (X.sql against X.out)
  portcullis hash-password         read a password on stdin, print its SCRAM-SHA-256 verifier
  portcullis --help | --version

apply options:
  --data DIR            offline: apply to this data directory (no server may hold it)
  --url URL             online: a running server (postgres://user@host:port/db); without
                        --url and --data, the PG* variables (and .pgpass) or 127.0.0.1:6432
  --catalog URL         a catalog in PostgreSQL (as serve --catalog; PORTCULLIS_CATALOG), worked on
                        in-process beside any running instances
  --user NAME           offline and --catalog: the catalog user to act as (default: the bootstrap superuser)
  --dry-run             parse and check every statement (privileges too), commit nothing

dump options: --data DIR, --catalog URL or --url URL, as apply (online, the user must be a superuser)
  a dump holds password verifiers and API key hashes: keep it as you keep the catalog (the
  token issuer's signing keys go with their public half only)

golden options (each file runs on a fresh serve --memory --deterministic of this process,
with a data plane of its own, as \`psql -X -a -q\` would run it):
  --update              rewrite the expected .out files instead of comparing
  --jobs N              files run in parallel (default: the number of cores)
  --upstream URL        the data plane: this PostgreSQL (postgres://user:pw@host/db, a role
                        with CREATEDB and CREATEROLE), each file in databases of its own,
                        dropped after it; default: embedded (PGlite), in memory
  --server URL          run against a live server (postgres://...) instead

serve options (flags > PORTCULLIS_* environment > --config file > defaults):
  --host HOST           address to listen on (default ${DEFAULTS.host}; PORTCULLIS_HOST)
  --port N              pgwire port (default ${DEFAULTS.port}; 0 = any free port; PORTCULLIS_PORT)
  --http-port N|off     HTTP API port (default ${DEFAULTS.httpPort}; PORTCULLIS_HTTP_PORT)
  --data DIR            catalog data directory (default ${DEFAULTS.data}; PORTCULLIS_DATA)
  --memory              keep the catalog in memory only: nothing survives exit
  --catalog URL         keep the catalog in PostgreSQL (postgres://...), schema portcullis,
                        shared by every instance given the same URL (PORTCULLIS_CATALOG)
  --deterministic       with --memory (implied): fixed clock stepping one second per
                        statement, seeded ids, secrets and salts — for golden files; with
                        --catalog, on an empty catalog only (golden --server against it)
  --tls-cert FILE       PEM certificate (chain) for TLS on pgwire and HTTPS (PORTCULLIS_TLS_CERT);
                        SIGHUP reloads it and --tls-key
  --tls-key FILE        its PEM private key (PORTCULLIS_TLS_KEY)
  --tls-client-ca FILE  mTLS: PEM CA of client certificates; a verified one logs in as the user
                        whose CERTIFICATE SUBJECT it has (--tls-cert-login cn: whose name is its CN)
  --tls-crl FILE        PEM certificate revocation list for client certificates
  --require-tls on|except-loopback
                        refuse pgwire startups without TLS (28000)
  --config FILE         a portcullis.toml with the same settings (host, port, http_port, data,
                        memory, scram_iterations, bootstrap_user, max_connections)
  --scram-iterations N  PBKDF2 iterations for passwords hashed by the server (default 4096)
  --compact-at BYTES    snapshot the catalog and restart the log once the log is this big
                        (default 67108864; PORTCULLIS_COMPACT_AT)
  --encryption-key-file FILE
                        encrypt the data directory, or the --catalog rows, at rest (AES-256-GCM) with the 256-bit key
                        in FILE (openssl rand -hex 32 > FILE; PORTCULLIS_ENCRYPTION_KEY_FILE);
                        also taken by apply, dump, compact, audit verify and rekey
  --data-plane embedded|off
                        where SQL that is not the admin language runs: an embedded
                        PostgreSQL (PGlite) under the data directory (in memory with
                        --memory and --deterministic), or nowhere (0A000); default
                        embedded, off with --catalog (PORTCULLIS_DATA_PLANE)
  --upstream URL        run that SQL on an operator's PostgreSQL 14+ (postgres://user:pw@host/db,
                        sslmode as in the URL; PORTCULLIS_UPSTREAM)
  --pool-mode MODE      upstream connections: transaction (shared between sessions, a
                        transaction at a time) or session (one per session); default
                        ${DEFAULTS.poolMode} (PORTCULLIS_POOL_MODE)
  --pool-size N         upstream connections per database (default ${DEFAULTS.poolSize}; PORTCULLIS_POOL_SIZE)
  --pool-timeout S      seconds a session waits for one before 53300 (default ${DEFAULTS.poolTimeout}; PORTCULLIS_POOL_TIMEOUT)

On first start of an empty catalog, the superuser PORTCULLIS_BOOTSTRAP_USER (default admin)
is created with PORTCULLIS_BOOTSTRAP_PASSWORD, or with a random password printed once on stderr;
with PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP=true it is set NOLOGIN once another superuser exists.

Token issuer settings (environment or --config): issuer_url (PORTCULLIS_ISSUER_URL, default
this HTTP API's address), access_token_seconds (default ${DEFAULTS.accessTokenSeconds}), refresh_token_seconds
(default ${DEFAULTS.refreshTokenSeconds}), create_token_max_seconds (CREATE TOKEN's longest EXPIRES IN,
default ${DEFAULTS.createTokenMaxSeconds}), bootstrap_disable_after_setup (default false).

Connect with:  psql -h 127.0.0.1 -p 6432 -U admin
`;

export async function main(argv: string[]): Promise<void> {
  const command = argv[0];
  // A command whose work still waits when the event loop has nothing left to run can never
  // finish: Node would exit 0 with it half done. Say so, and exit non-zero. (A server's
  // command finishes once it listens; its sockets keep the process alive after that.)
  const stranded = () => {
    process.stderr.write(`portcullis: internal error: "${command}" stopped before it finished (nothing left to wait for); its work may be incomplete\n`);
    process.exitCode = 2;
  };
  process.once('beforeExit', stranded);
  try {
    return await run(command, argv.slice(1));
  } finally {
    process.off('beforeExit', stranded);
  }
}

async function run(command: string | undefined, rest: string[]): Promise<void> {
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'hash-password':
        return await hashPassword(rest);
      case 'golden':
        return await goldenCommand(rest);
      case 'apply':
        return await applyCommand(rest);
      case 'dump':
        return await dumpCommand(rest);
      case 'compact':
        return await compactCommand(rest);
      case 'audit':
        return await auditCommand(rest);
      case 'rekey':
        return await rekeyCommand(rest);
      case '--version':
      case 'version':
        process.stdout.write(`portcullis ${PRODUCT_VERSION}\n`);
        return;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return;
      default:
        fail(`unknown command "${command}"\n\n${HELP}`);
    }
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') fail((err as Error).message);
    fail((err as Error).message ?? String(err));
  }
}

function fail(message: string): never {
  process.stderr.write(`portcullis: ${message}\n`);
  process.exit(2);
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'http-port': { type: 'string' },
      data: { type: 'string' },
      memory: { type: 'boolean' },
      catalog: { type: 'string' },
      deterministic: { type: 'boolean' },
      config: { type: 'string' },
      'scram-iterations': { type: 'string' },
      'compact-at': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'require-tls': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'tls-crl': { type: 'string' },
      'tls-cert-login': { type: 'string' },
      'encryption-key-file': { type: 'string' },
      'data-plane': { type: 'string' },
      upstream: { type: 'string' },
      'pool-mode': { type: 'string' },
      'pool-size': { type: 'string' },
      'pool-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const flags: Record<string, string | boolean> = {};
  if (values.host !== undefined) flags.host = values.host;
  if (values.port !== undefined) flags.port = values.port;
  if (values['http-port'] !== undefined) flags.httpPort = values['http-port'];
  if (values.data !== undefined) flags.data = values.data;
  if (values.memory) flags.memory = true;
  if (values.catalog !== undefined) flags.catalog = values.catalog;
  if (values['scram-iterations'] !== undefined) flags.scramIterations = values['scram-iterations'];
  if (values['compact-at'] !== undefined) flags.compactAt = values['compact-at'];
  if (values['tls-cert'] !== undefined) flags.tlsCert = values['tls-cert'];
  if (values['tls-key'] !== undefined) flags.tlsKey = values['tls-key'];
  if (values['require-tls'] !== undefined) flags.requireTls = values['require-tls'];
  if (values['tls-client-ca'] !== undefined) flags.tlsClientCa = values['tls-client-ca'];
  if (values['tls-crl'] !== undefined) flags.tlsCrl = values['tls-crl'];
  if (values['tls-cert-login'] !== undefined) flags.tlsCertLogin = values['tls-cert-login'];
  if (values['encryption-key-file'] !== undefined) flags.encryptionKeyFile = values['encryption-key-file'];
  if (values['data-plane'] !== undefined) flags.dataPlane = values['data-plane'];
  if (values.upstream !== undefined) flags.upstream = values.upstream;
  if (values['pool-mode'] !== undefined) flags.poolMode = values['pool-mode'];
  if (values['pool-size'] !== undefined) flags.poolSize = values['pool-size'];
  if (values['pool-timeout'] !== undefined) flags.poolTimeout = values['pool-timeout'];
  const cfg = resolveConfig(flags, process.env, values.config);
  if (cfg.upstream && cfg.dataPlane === 'off') fail('--upstream and --data-plane off cannot be used together');
  if (cfg.memory && values.data !== undefined) fail('--memory and --data cannot be used together');
  if (cfg.catalog !== undefined && (cfg.memory || values.data !== undefined || process.env.PORTCULLIS_DATA)) {
    fail('--catalog cannot be used with --data or --memory: the catalog lives in that PostgreSQL');
  }
  if (cfg.catalog !== undefined && cfg.dataPlane === 'embedded' && !cfg.upstream) {
    fail('--catalog cannot be used with --data-plane embedded: each instance would have a data plane of its own, in memory; use --upstream URL');
  }
  // With --catalog: golden files against an instance on a fresh catalog (`golden --server`).
  if (values.deterministic && cfg.catalog === undefined) {
    // A fixed clock and seeded secrets have no place in a catalog that outlives the process.
    if (values.data !== undefined || process.env.PORTCULLIS_DATA) {
      fail('--deterministic cannot be used with --data: deterministic mode keeps the catalog in memory');
    }
    cfg.memory = true;
  }
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const server = await startServer({
    host: cfg.host,
    port: cfg.port,
    httpPort: cfg.httpPort,
    dataDir: cfg.memory || cfg.catalog !== undefined ? null : cfg.data,
    catalog: cfg.catalog,
    scramIterations: cfg.scramIterations,
    bootstrapUser: cfg.bootstrapUser,
    bootstrapPassword: cfg.bootstrapPassword,
    bootstrapDisableAfterSetup: cfg.bootstrapDisableAfterSetup,
    issuer: {
      ...(cfg.issuerUrl !== undefined ? { url: cfg.issuerUrl } : {}),
      accessTokenSeconds: cfg.accessTokenSeconds,
      refreshTokenSeconds: cfg.refreshTokenSeconds,
      maxMintedTokenSeconds: cfg.createTokenMaxSeconds,
    },
    maxConnections: cfg.maxConnections,
    compactAt: cfg.compactAt,
    encryption: cfg.encryptionKeyFile && !cfg.memory ? readKeyFile(cfg.encryptionKeyFile) : null,
    tls: readTls(cfg),
    rateLimit: { perMinute: cfg.rateLimitPerMinute, perHour: cfg.rateLimitPerHour },
    parseLimits: {
      maxStatementBytes: cfg.maxStatementBytes,
      maxStatementTokens: cfg.maxStatementTokens,
      maxNestingDepth: cfg.maxNestingDepth,
      maxPredicateSize: cfg.maxPredicateSize,
      maxInListLength: cfg.maxInListLength,
    },
    lockoutPolicy: {
      ipFailures: cfg.lockoutIpFailures,
      ipWindowMs: cfg.lockoutIpWindowSeconds * 1000,
      ipLockMs: cfg.lockoutIpSeconds * 1000,
      userFailures: cfg.lockoutUserFailures,
      userLockMs: cfg.lockoutUserSeconds * 1000,
    },
    requireTls: cfg.requireTls,
    certLogin: cfg.tlsCertLogin,
    tokenPolicy: { clockSkewSeconds: cfg.jwtClockSkew, maxTokenBytes: cfg.jwtMaxBytes },
    jwksPolicy: {
      ttlMs: cfg.jwksCacheSeconds * 1000,
      refetchMs: cfg.jwksRefetchSeconds * 1000,
      maxStaleMs: cfg.jwksMaxStaleSeconds * 1000,
      breakerFailures: cfg.jwksBreakerFailures,
      breakerOpenMs: cfg.jwksBreakerOpenSeconds * 1000,
      timeoutMs: cfg.jwksTimeoutSeconds * 1000,
      maxBytes: cfg.jwksMaxBytes,
    },
    deterministic: values.deterministic === true,
    // Embedded by default (in memory with --memory and --deterministic, as golden files run).
    // With --catalog, off unless --upstream: an embedded plane would be each instance's own, in memory.
    dataPlane: cfg.upstream ? { upstream: cfg.upstream, pool: { mode: cfg.poolMode, size: cfg.poolSize, timeoutMs: cfg.poolTimeout * 1000 } } : (cfg.dataPlane ?? (cfg.catalog !== undefined ? 'off' : 'embedded')),
    log,
  });
  // Tests and scripts wait for this line (no sleeps): it carries the real ports.
  log(
    `portcullis ${PRODUCT_VERSION} listening on ${cfg.host}:${server.port} (pgwire)` +
      (server.httpPort !== null ? ` and ${cfg.host}:${server.httpPort} (http)` : '') +
      `; catalog: ${server.engine.storeDescription}`,
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // SIGHUP: read the certificate and key again; open connections keep theirs.
  process.on('SIGHUP', () => {
    const files = readTls(cfg);
    if (!files) return;
    try {
      server.reloadTls(files);
      log('portcullis: TLS certificate reloaded');
    } catch (err) {
      log(`portcullis: TLS reload failed, keeping the previous certificate: ${(err as Error).message}`);
    }
  });
}

function readTls(cfg: { tlsCert?: string; tlsKey?: string; tlsClientCa?: string; tlsCrl?: string }) {
  if (!cfg.tlsCert || !cfg.tlsKey) return null;
  const read = (f: string | undefined) => (f ? readFileSync(f, 'utf8') : undefined);
  return { cert: read(cfg.tlsCert)!, key: read(cfg.tlsKey)!, clientCa: read(cfg.tlsClientCa), crl: read(cfg.tlsCrl) };
}

async function hashPassword(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { iterations: { type: 'string' } }, strict: true });
  const iterations = values.iterations ? Number(values.iterations) : DEFAULTS.scramIterations;
  if (!Number.isInteger(iterations) || iterations < 1) fail('--iterations must be a positive integer');
  const rl = createInterface({ input: process.stdin, terminal: false });
  let password: string | undefined;
  for await (const line of rl) {
    password = line;
    break;
  }
  rl.close();
  if (!password) fail('no password on standard input');
  process.stdout.write(`${formatVerifier(await makeVerifier(password, iterations))}\n`);
}

async function goldenCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { update: { type: 'boolean' }, jobs: { type: 'string' }, server: { type: 'string' }, upstream: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const jobs = values.jobs !== undefined ? Number(values.jobs) : availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) fail('--jobs must be a positive integer');
  if (values.server !== undefined && values.upstream !== undefined) fail('--server and --upstream cannot be used together: a live server has its own data plane');
  const files = goldenFiles(positionals);
  if (files.length === 0) fail('no .sql files found');
  const started = performance.now();
  const outcomes = await golden(files, {
    update: values.update === true,
    jobs: values.server !== undefined ? 1 : jobs,
    server: values.server,
    upstream: values.upstream,
    colour: process.stdout.isTTY === true,
    write: (s) => process.stdout.write(s),
    bootstrapPassword: process.env.PORTCULLIS_BOOTSTRAP_PASSWORD,
  });
  const count = (status: string) => outcomes.filter((o) => o.status === status).length;
  for (const o of outcomes) {
    // One column wide enough for the longest word ("updated", "created") and a space.
    process.stdout.write(`${o.status === 'passed' ? 'ok' : o.status === 'failed' ? 'FAILED' : o.status}`.padEnd(8) + `${o.file}\n`);
    if (o.diff) process.stdout.write(o.diff);
    if (o.status === 'failed' && o.log && o.log.length > 0) process.stdout.write(`server log of ${o.file}:\n${o.log.map((l) => `  ${l.replaceAll('\n', '\n  ')}\n`).join('')}`);
  }
  const failed = count('failed');
  const updated = count('updated') + count('created');
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  process.stdout.write(
    `${outcomes.length} files, ${count('passed')} passed, ${updated > 0 ? `${updated} updated, ` : ''}${failed} failed (${seconds} s)\n`,
  );
  if (failed > 0) process.exit(1);
}

async function applyCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { data: { type: 'string' }, url: { type: 'string' }, catalog: { type: 'string' }, user: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'encryption-key-file': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  // No FILE: the script comes on standard input (`portcullis dump ... | portcullis apply ...`).
  if (positionals.length === 0) {
    if (process.stdin.isTTY) fail('apply needs a FILE, or a script on standard input');
    positionals.push('-');
  }
  for (const f of positionals) if (f !== '-' && !existsSync(f)) fail(`${f}: no such file`);
  const dryRun = values['dry-run'] === true;
  const target = await openTarget({ ...targetOf(values), user: values.user, keys: keysOf(keyFileCipher(values['encryption-key-file'])) });
  try {
    const summary = await applyFiles(target.conn, positionals, {
      dryRun,
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
      progress: process.stderr.isTTY === true,
    });
    const what = `${summary.files} ${summary.files === 1 ? 'file' : 'files'}, ${summary.statements} ${summary.statements === 1 ? 'statement' : 'statements'} in ${summary.seconds.toFixed(2)} s`;
    process.stdout.write(dryRun ? `dry run: checked ${what}; nothing committed\n` : `applied ${what}\n`);
  } catch (err) {
    if (!(err instanceof ApplyFailed)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await target.close();
  }
}

async function dumpCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { data: { type: 'string' }, url: { type: 'string' }, catalog: { type: 'string' }, 'encryption-key-file': { type: 'string' } }, strict: true });
  const target = await openTarget({ ...targetOf(values), keys: keysOf(keyFileCipher(values['encryption-key-file'])) });
  try {
    const r = await target.conn.query('DUMP CATALOG');
    if (r.error) {
      process.stderr.write(`portcullis: ${r.error.code} ${r.error.message}${r.error.detail ? `\nDETAIL:  ${r.error.detail}` : ''}\n`);
      process.exitCode = 1;
      return;
    }
    for (const row of r.results.flatMap((x) => x.rows)) process.stdout.write(`${row[0]}\n`);
  } finally {
    await target.close();
  }
}

/** Where apply and dump work: --data, --url, --catalog, else PORTCULLIS_CATALOG, else a server (PG* or 127.0.0.1:6432). */
function targetOf(values: { data?: string; url?: string; catalog?: string }): { data?: string; url?: string; catalog?: string } {
  const catalog = values.catalog ?? (values.data === undefined && values.url === undefined ? process.env.PORTCULLIS_CATALOG || undefined : undefined);
  return { data: values.data, url: values.url, catalog };
}

/** The data directory's key: --encryption-key-file, else PORTCULLIS_ENCRYPTION_KEY_FILE, else none. */
function keyFileCipher(flag: string | undefined) {
  const file = flag ?? (process.env.PORTCULLIS_ENCRYPTION_KEY_FILE || undefined);
  return file ? readKeyFile(file) : null;
}

/** An engine on a data directory, offline (it takes the directory's lock). */
async function offlineEngine(dir: string, keys: Keys): Promise<{ engine: Engine; store: LogStore }> {
  if (!existsSync(path.join(dir, LOG_FILE))) fail(`${dir} holds no catalog (no ${LOG_FILE})`);
  const parts = dataDirOptions(dir, { keys });
  const engine = new Engine({
    ...parts,
    bootstrapUser: process.env.PORTCULLIS_BOOTSTRAP_USER,
    bootstrapPassword: process.env.PORTCULLIS_BOOTSTRAP_PASSWORD,
  });
  await engine.open();
  return { engine, store: parts.store };
}

async function compactCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { data: { type: 'string' }, 'encryption-key-file': { type: 'string' } }, strict: true });
  if (values.data === undefined) fail('compact needs --data DIR (a running server compacts by itself)');
  const { engine } = await offlineEngine(values.data, keysOf(keyFileCipher(values['encryption-key-file'])));
  try {
    const r = await engine.compact();
    if (r) process.stdout.write(`compacted ${values.data}: log of ${r.logBytesBefore} bytes replaced by a snapshot of ${r.snapshotBytes} bytes\n`);
  } finally {
    await engine.close();
  }
}

/** portcullis audit verify: the whole hash chain, read-only (a running server may hold the directory or share the catalog). */
async function auditCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') fail('usage: portcullis audit verify --data DIR [--encryption-key-file FILE] | --catalog URL');
  const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, catalog: { type: 'string' }, 'encryption-key-file': { type: 'string' } }, strict: true });
  if (values.data !== undefined && values.catalog !== undefined) fail('--data and --catalog cannot be used together');
  const catalog = values.catalog ?? (values.data === undefined ? process.env.PORTCULLIS_CATALOG || undefined : undefined);
  if (catalog !== undefined) return auditVerifyCatalog(catalog);
  const dir = values.data ?? DEFAULTS.data;
  if (!existsSync(path.join(dir, AUDIT_FILE))) fail(`${dir} holds no audit trail (no ${AUDIT_FILE})`);
  const v = verifyTrail(dir, keysOf(keyFileCipher(values['encryption-key-file'])));
  const file = path.join(dir, AUDIT_FILE);
  if (v.ok) {
    process.stdout.write(`${file}: ${v.records} records, hash chain intact; head ${v.head}\n`);
    return;
  }
  process.stderr.write(`${file}: audit record ${v.record} (byte offset ${v.offset}) fails verification: ${v.reason}\n`);
  process.exitCode = 1;
}

/** The chain in a catalog's PostgreSQL (portcullis.audit), read in order. */
async function auditVerifyCatalog(url: string): Promise<void> {
  const plan = parseConnectionString(url);
  const where = `PostgreSQL ${plan.safe} (${CATALOG_SCHEMA}.audit)`;
  const c = await connectCatalog({ ...plan, sessionAttrs: 'any' }, 'portcullis audit verify');
  try {
    const t = await c.query<{ t: string | null }>(`SELECT to_regclass('${CATALOG_SCHEMA}.audit')::text AS t`);
    if (t.rows[0]!.t === null) fail(`${where}: no audit trail there (no table ${CATALOG_SCHEMA}.audit)`);
    const v = await verifyPgTrail(c);
    if (v.ok) {
      process.stdout.write(`${where}: ${v.records} records, hash chain intact; head ${v.head}\n`);
      return;
    }
    process.stderr.write(`${where}: audit record ${v.record} fails verification: ${v.reason}\n`);
    process.exitCode = 1;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * portcullis rekey: every file of the data directory rewritten under a new key (or, from
 * a plaintext directory, encrypted for the first time). Offline. Each file moves on its own
 * by an atomic rename, and files under either key are read, so an interrupted rekey is
 * finished by running it again with the same keys.
 */
async function rekeyCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { data: { type: 'string' }, 'encryption-key-file': { type: 'string' }, 'new-key-file': { type: 'string' } },
    strict: true,
  });
  if (values.data === undefined) fail('rekey needs --data DIR (offline: stop the server first)');
  if (values['new-key-file'] === undefined) fail('rekey needs --new-key-file FILE (make one with: openssl rand -hex 32)');
  const dir = values.data;
  const old = keyFileCipher(values['encryption-key-file']);
  const next = readKeyFile(values['new-key-file']);
  const { engine, store } = await offlineEngine(dir, { write: old, read: [old, next] });
  try {
    store.useKey(keysOf(next));
    await engine.compact(); // snapshot and log, under the new key
    await rekeyJwksCache(path.join(dir, 'jwks'), [old, next], next);
    if (engine.audit instanceof AuditTrail) engine.audit.rekey(keysOf(next));
  } finally {
    await engine.close();
  }
  process.stdout.write(`rekeyed ${dir}: key id ${old ? formatKeyId(old.keyId) : 'none (plaintext)'} → ${formatKeyId(next.keyId)}; start the server with the new key file\n`);
}
