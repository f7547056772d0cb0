import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { PgliteHost } from './pglite-host.js';
import type { AdminSql, DataPlane, Lease, PlaneDatabase } from './types.js';
import { planeDatabaseName } from './names.js';
import { FifoMutex } from './mutex.js';
import { FrameQueue } from './frame-queue.js';
import { adminOver, decodeBackend, readyStatus, splitFrames } from './frames.js';
import { copyFromStdin, copyInResponse, errorResponse, sqlParser } from './copy-in.js';
import { SqlState } from '../errors/sqlstate.js';
import { serialize } from 'pg-protocol';

/**
 * The embedded data plane: one PGlite instance (PostgreSQL compiled to WASM, a single
 * connection) per portcullis database, opened on first use, kept under
 * `<dataDir>/plane/<planeDatabaseName>` or in memory.
 *
 * - Start-up: nothing is opened until a database is used, so the server listens at once.
 * - New databases start from a prepared template instead of initdb (about 4-6 s here): a
 *   data directory `<dataDir>/plane/.template` copied with the file system on disk, a
 *   tarball (PGlite's `dumpDataDir`) in a cache directory in memory. The template is made
 *   once, by the first database that needs it.
 * - Turns: the instance's single connection is held by one lease at a time (a FIFO
 *   mutex); `withAdmin` takes a turn like any lease. A lease is `fresh` when the previous
 *   turn belonged to another session or to portcullis itself, or the instance was just
 *   opened.
 * - Inside the instance the session is always the superuser `postgres` (PGlite cannot log
 *   in as anyone else); the identity a client's SQL runs under is set by the holder of the
 *   lease (SET ROLE) and defended by the forwarder and the provisioned database.
 */

export interface EmbeddedPlaneOptions {
  /** The server's data directory (instances live under `<dataDir>/plane/`); ignored with `memory`. */
  dataDir?: string;
  /** Keep every database in memory (`--memory`, `--deterministic`): nothing under the data directory. */
  memory?: boolean;
  /** Where the in-memory template tarball is cached (default: the OS temporary directory). */
  cacheDir?: string;
  /**
   * On disk, an instance nobody used for this long is closed (default 10 minutes; 0 never):
   * each open instance holds about 180 MB, reopening takes under a second. In memory an
   * instance is its database, so it is never closed while the plane is open.
   */
  idleCloseMs?: number;
  /**
   * In memory: where instances come from and go back to (the golden runner's pool, which
   * resets them between files); default: each opened from the template and closed at the end.
   */
  instances?: InstanceSource;
  /**
   * PostgreSQL settings (`name=value`) every instance starts with, after PGlite's own
   * (deterministic mode's small shared_buffers, see DETERMINISTIC_PLANE_SETTINGS).
   */
  settings?: readonly string[];
}

/** Where an in-memory plane's instances come from (see EmbeddedPlaneOptions.instances). */
export interface InstanceSource {
  /** An instance as fresh as one opened from the template. */
  open(): Promise<PgliteHost>;
  /** The plane is done with the instance (closed or dropped): the source closes or keeps it. */
  release(pg: PgliteHost): Promise<void>;
}

/**
 * The instances of `serve --deterministic` and of the golden runner: 128 MB of shared
 * buffers (PGlite's default) are zeroed at every start, about 1.5 s of CPU here, for
 * pages that are in memory anyway; 8 MB starts in a third of the time and holds any golden
 * file's tables.
 */
export const DETERMINISTIC_PLANE_SETTINGS: readonly string[] = ['shared_buffers=8MB'];

const DEFAULT_IDLE_CLOSE_MS = 10 * 60_000;

/**
 * Settings a client must not set on the embedded plane: when one of these timeouts fires
 * (a FATAL in PostgreSQL), PGlite's next call never returns and the instance hangs with
 * every session waiting for it. The lease cannot see a SET inside SQL; the forwarder's
 * parser refuses SET / RESET / SET LOCAL of these names (set_config is not executable by
 * principals). `statement_timeout` is harmless there, and has no effect: a query in PGlite
 * cannot be interrupted.
 */
export const EMBEDDED_FORBIDDEN_SETTINGS: readonly string[] = ['idle_in_transaction_session_timeout', 'idle_session_timeout', 'transaction_timeout'];

const require = createRequire(import.meta.url);

function pgliteVersion(): string {
  try {
    const main = require.resolve('@electric-sql/pglite');
    const pkg = JSON.parse(readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Frontend message types a lease passes to PGlite; anything else (startup, Terminate, ...) is a protocol failure. */
const FRONTEND_TYPES = new Set(['P', 'B', 'D', 'E', 'C', 'H', 'S', 'Q', 'F', 'd', 'c', 'f'].map((c) => c.charCodeAt(0)));
/**
 * PostgreSQL's limit on the length of these messages (PQ_SMALL_MESSAGE_LIMIT): a longer one
 * is a lost connection to PostgreSQL, and PGlite loops forever on it instead of exiting.
 */
const SMALL_TYPES = new Set(['C', 'D', 'E', 'H', 'S'].map((c) => c.charCodeAt(0)));
const SMALL_MESSAGE_LIMIT = 10_000;

/** Why a lease will not pass these frames to PGlite, or null when it will. */
function refusedFrame(msgs: Uint8Array[]): string | null {
  for (const m of msgs) {
    const type = JSON.stringify(String.fromCharCode(m[0]!));
    if (!FRONTEND_TYPES.has(m[0]!)) return `message type ${type}`;
    if (SMALL_TYPES.has(m[0]!) && m.length - 1 > SMALL_MESSAGE_LIMIT) return `a ${type} message of ${m.length - 1} bytes`;
  }
  return null;
}

/** Extended-protocol messages: after one of them, the connection expects a Sync. */
const EXTENDED_TYPES = new Set(['P', 'B', 'D', 'E', 'C', 'H'].map((c) => c.charCodeAt(0)));

/** Who held a turn last: a session key, or portcullis itself. */
const ADMIN = Symbol('portcullis');

interface Instance {
  readonly name: string;
  readonly mutex: FifoMutex;
  pg: PgliteHost | null;
  opening: Promise<PgliteHost> | null;
  /** The session that held the last turn (ADMIN for withAdmin); null right after opening. */
  lastHolder: object | symbol | null;
  /** Times, for figures and tests. */
  openedMs: number;
  /** performance.now() when the last turn ended (or the instance opened). */
  lastUsed: number;
  /** Set by dropDatabase: turns still waiting for this instance fail instead of reopening it. */
  dropped: boolean;
}

export class EmbeddedPlane implements DataPlane {
  readonly kind = 'embedded' as const;
  private readonly instances = new Map<string, Instance>();
  private readonly root: string | null;
  private readonly memory: boolean;
  private readonly cacheDir: string;
  private template: Promise<string | Uint8Array> | null = null;
  private closed = false;
  private readonly idleCloseMs: number;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly source: InstanceSource | null;
  private readonly settings: readonly string[];

  constructor(opts: EmbeddedPlaneOptions) {
    this.memory = opts.memory === true;
    if (!this.memory && !opts.dataDir) throw new Error('embedded data plane: a data directory is needed unless in memory');
    this.root = this.memory ? null : path.join(opts.dataDir!, 'plane');
    this.cacheDir = opts.cacheDir ?? os.tmpdir();
    this.idleCloseMs = this.memory ? 0 : (opts.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS);
    this.source = this.memory ? (opts.instances ?? null) : null;
    this.settings = opts.settings ?? [];
    if (this.idleCloseMs > 0) {
      this.sweeper = setInterval(() => void this.closeIdle(this.idleCloseMs), Math.min(60_000, Math.max(1_000, this.idleCloseMs / 4)));
      this.sweeper.unref();
    }
  }

  /**
   * Closes the instances (on disk only) that no one holds or waits for and that were last
   * used at least `idleMs` ago; they open again on their next use. Returns how many closed.
   */
  async closeIdle(idleMs: number): Promise<number> {
    if (this.memory) return 0;
    let closed = 0;
    for (const inst of [...this.instances.values()]) {
      if (!inst.pg || inst.mutex.busy || performance.now() - inst.lastUsed < idleMs) continue;
      const release = await inst.mutex.acquire();
      try {
        // Someone may have taken a turn while this one waited.
        if (inst.pg && performance.now() - inst.lastUsed >= idleMs) {
          await this.shut(inst);
          closed++;
        }
      } finally {
        release();
      }
    }
    return closed;
  }

  /** How many instances are open now. */
  get openInstances(): number {
    return [...this.instances.values()].filter((i) => i.pg !== null).length;
  }

  /** Milliseconds making the template took (initdb), 0 when it existed already: for figures and tests. */
  templateMs = 0;

  /** Milliseconds the last open of `db`'s instance took (0 when not open): for figures and tests. */
  openTime(db: PlaneDatabase): number {
    return this.instances.get(planeDatabaseName(db))?.openedMs ?? 0;
  }

  async ensureDatabase(db: PlaneDatabase): Promise<void> {
    await this.open(this.instance(db));
  }

  async dropDatabase(db: PlaneDatabase): Promise<void> {
    const name = planeDatabaseName(db);
    const inst = this.instances.get(name);
    if (inst) {
      const release = await inst.mutex.acquire();
      try {
        await this.shut(inst);
        inst.dropped = true;
        this.instances.delete(name);
        if (this.root) rmSync(path.join(this.root, name), { recursive: true, force: true });
      } finally {
        release();
      }
    } else if (this.root) {
      rmSync(path.join(this.root, name), { recursive: true, force: true });
    }
  }

  async withAdmin<T>(db: PlaneDatabase, fn: (sql: AdminSql) => Promise<T>): Promise<T> {
    const inst = this.instance(db);
    const release = await inst.mutex.acquire();
    try {
      const pg = await this.open(inst);
      inst.lastHolder = ADMIN;
      const admin = adminOver((frames) => this.exchange(inst, pg, frames));
      // Portcullis's own identity, whatever the last turn left set.
      await admin.exec('RESET ROLE');
      try {
        return await fn(admin);
      } finally {
        // The turn ends idle, as a lease's does.
        if (inst.pg === pg && (await pg.inTransaction().catch(() => false))) await admin.exec('ROLLBACK').catch(() => undefined);
      }
    } finally {
      inst.lastUsed = performance.now();
      release();
    }
  }

  async lease(db: PlaneDatabase, session: object): Promise<Lease> {
    if (this.closed) throw new Error('embedded data plane is closed');
    const inst = this.instance(db);
    const release = await inst.mutex.acquire();
    let pg: PgliteHost;
    try {
      pg = await this.open(inst);
    } catch (err) {
      release();
      throw err;
    }
    const fresh = inst.lastHolder !== session;
    inst.lastHolder = session;
    return new EmbeddedLease(this, inst, pg, fresh, release);
  }

  endSession(_session: object): void {
    // No connection belongs to a session on this plane; the next turn of another session is fresh anyway.
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const inst of [...this.instances.values()]) {
      const release = await inst.mutex.acquire();
      try {
        await this.shut(inst);
      } finally {
        release();
      }
    }
    this.instances.clear();
  }

  private instance(db: PlaneDatabase): Instance {
    const name = planeDatabaseName(db);
    let inst = this.instances.get(name);
    if (!inst) {
      inst = { name, mutex: new FifoMutex(), pg: null, opening: null, lastHolder: null, openedMs: 0, lastUsed: performance.now(), dropped: false };
      this.instances.set(name, inst);
    }
    return inst;
  }

  /** The instance's PGlite, opened (and created from the template) on first use. */
  private open(inst: Instance): Promise<PgliteHost> {
    if (this.closed) return Promise.reject(new Error('embedded data plane is closed'));
    if (inst.dropped) return Promise.reject(new Error(`embedded data plane: ${inst.name} was dropped`));
    if (inst.pg && !inst.pg.closed) return Promise.resolve(inst.pg);
    inst.opening ??= (async () => {
      const started = performance.now();
      const pg = this.source ? await this.source.open() : await this.fromTemplate(inst);
      inst.pg = pg;
      inst.lastHolder = null;
      inst.openedMs = performance.now() - started;
      inst.lastUsed = performance.now();
      return pg;
    })().finally(() => {
      inst.opening = null;
    });
    return inst.opening;
  }

  /** A new instance from the template: its directory on disk (made from the template once), or the tarball into memory. */
  private async fromTemplate(inst: Instance): Promise<PgliteHost> {
    const template = await this.templateData();
    if (typeof template === 'string') {
      const dir = path.join(this.root!, inst.name);
      if (!existsSync(path.join(dir, 'PG_VERSION'))) {
        // Copied aside and renamed into place: a crash mid-copy leaves no half database.
        const work = `${dir}.creating-${randomBytes(4).toString('hex')}`;
        cpSync(template, work, { recursive: true });
        rmSync(dir, { recursive: true, force: true });
        renameSync(work, dir);
      }
      return PgliteHost.open({ dataDir: dir }, this.settings);
    }
    return PgliteHost.open({ tar: template }, this.settings);
  }

  /**
   * The template: a directory path on disk, tarball bytes in memory. Made once by running
   * initdb in a throwaway instance, built aside and renamed into place.
   */
  private templateData(): Promise<string | Uint8Array> {
    this.template ??= (async () => {
      const started = performance.now();
      if (this.root) {
        const dir = path.join(this.root, '.template');
        if (existsSync(path.join(dir, 'PG_VERSION'))) return dir;
        mkdirSync(this.root, { recursive: true });
        const work = `${dir}.building-${randomBytes(4).toString('hex')}`;
        try {
          await PgliteHost.makeTemplate(work);
          rmSync(dir, { recursive: true, force: true });
          renameSync(work, dir);
          this.templateMs = performance.now() - started;
        } catch (err) {
          rmSync(work, { recursive: true, force: true });
          throw err;
        }
        return dir;
      }
      const t = await memoryTemplate(this.cacheDir);
      this.templateMs = t.madeMs;
      return t.tar;
    })();
    this.template.catch(() => (this.template = null));
    return this.template;
  }

  /** Runs frames on the instance and returns its backend frames; a failure closes the instance. */
  async exchange(inst: Instance, pg: PgliteHost, frames: Uint8Array): Promise<Uint8Array[]> {
    let out: Uint8Array;
    try {
      out = await pg.exec(frames);
    } catch (err) {
      // PGlite exits on a FATAL error (its single backend is gone): open it again next time.
      await this.broken(inst, pg);
      throw new Error(`embedded data plane: the instance for ${inst.name} failed: ${(err as Error).message ?? String(err)}`);
    }
    const { frames: msgs, rest } = splitFrames(out);
    if (rest.length > 0) {
      await this.broken(inst, pg);
      throw new Error(`embedded data plane: ${inst.name} answered with an incomplete message`);
    }
    return msgs;
  }

  /** Forgets a failed instance; the next lease opens it again from its data directory. */
  async broken(inst: Instance, failed: PgliteHost | null = inst.pg): Promise<void> {
    // Only the instance that failed: another may have been opened since.
    if (inst.pg !== failed) return;
    const pg = inst.pg;
    inst.pg = null;
    inst.lastHolder = null;
    // terminate, not close: after a failure PGlite may not be able to shut down cleanly.
    if (pg) await pg.terminate().catch(() => undefined);
  }

  private async shut(inst: Instance): Promise<void> {
    if (inst.opening) await inst.opening.catch(() => undefined);
    const pg = inst.pg;
    inst.pg = null;
    if (pg && this.source) await this.source.release(pg).catch(() => undefined);
    else if (pg && !pg.closed) await pg.close().catch(() => undefined);
  }
}

/**
 * The in-memory template: a tarball of a data directory fresh from initdb (PGlite's
 * `dumpDataDir`), cached as a file in `cacheDir` (made once per PGlite version: initdb takes
 * seconds) and kept in this process once read.
 */
const memoryTemplates = new Map<string, Promise<{ tar: Uint8Array; madeMs: number }>>();

export function memoryTemplate(cacheDir: string = os.tmpdir()): Promise<{ tar: Uint8Array; madeMs: number }> {
  let t = memoryTemplates.get(cacheDir);
  if (!t) {
    t = (async () => {
      const file = path.join(cacheDir, `portcullis-pglite-template-${pgliteVersion()}.tar`);
      if (existsSync(file)) return { tar: new Uint8Array(readFileSync(file)), madeMs: 0 };
      const started = performance.now();
      const tar = (await PgliteHost.makeTemplate(null))!;
      const madeMs = performance.now() - started;
      try {
        mkdirSync(cacheDir, { recursive: true });
        const work = `${file}.${randomBytes(4).toString('hex')}`;
        writeFileSync(work, tar);
        renameSync(work, file);
      } catch {
        // The cache is an optimisation: without it the next process runs initdb again.
      }
      return { tar, madeMs };
    })();
    memoryTemplates.set(cacheDir, t);
    t.catch(() => memoryTemplates.delete(cacheDir));
  }
  return t;
}

/** One turn on an instance's single connection. */
class EmbeddedLease implements Lease {
  readonly fresh: boolean;
  readonly admin: AdminSql;
  private readonly queue = new FrameQueue();
  /** Frames run strictly in order, one PGlite call at a time. */
  private chain: Promise<void> = Promise.resolve();
  /** 'I', 'T' or 'E' from the last ReadyForQuery. */
  private status: 'I' | 'T' | 'E' = 'I';
  /** Extended-protocol messages were sent since the last Sync. */
  private unsynced = false;
  /** A COPY FROM STDIN Query and the copy messages after it, kept until CopyDone/CopyFail. */
  private copyIn: Uint8Array[] | null = null;
  /** After an error this lease reported itself in the extended protocol: messages are dropped until Sync. */
  private discarding = false;
  private released = false;

  constructor(
    private readonly plane: EmbeddedPlane,
    private readonly inst: Instance,
    private readonly pg: PgliteHost,
    fresh: boolean,
    private readonly unlock: () => void,
  ) {
    this.fresh = fresh;
    // In order with the client's frames already written.
    this.admin = adminOver((frames) => this.enqueue(() => this.exchange(frames)));
  }

  write(frames: Uint8Array): void {
    if (this.released) throw new Error('data plane lease already released');
    const { frames: msgs, rest } = splitFrames(frames);
    const bad = rest.length > 0 ? 'an incomplete message' : refusedFrame(msgs);
    if (bad !== null) {
      this.queue.fail(new Error(`data plane lease: refused to forward ${bad}`));
      return;
    }
    this.enqueue(() => this.forward(msgs));
  }

  next(): Promise<Uint8Array> {
    return this.queue.next();
  }

  /** PGlite runs a statement to its end: there is nothing to interrupt. */
  cancel(): Promise<void> {
    return Promise.resolve();
  }

  release(broken = false): void {
    if (this.released) return;
    this.released = true;
    this.copyIn = null;
    const finish = async () => {
      await this.chain;
      if (broken || this.queue.failed) {
        await this.plane.broken(this.inst, this.pg);
        return;
      }
      // A turn ends idle: a holder that leaves mid-pipeline or inside a transaction (its
      // client went away) is ended here, so the next session never inherits it.
      try {
        if (this.unsynced) await this.exchange(serialize.sync());
        if (this.status !== 'I') await this.exchange(serialize.query('ROLLBACK'));
      } catch {
        // exchange() already closed the instance.
      }
    };
    void finish().finally(() => {
      this.inst.lastUsed = performance.now();
      this.unlock();
    });
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const result = this.chain.then(step);
    this.chain = result.then(
      () => undefined,
      (err: Error) => this.queue.fail(err),
    );
    return result;
  }

  /** One PGlite call; tracks the transaction status from its ReadyForQuery. */
  private async exchange(frames: Uint8Array): Promise<Uint8Array[]> {
    const msgs = await this.plane.exchange(this.inst, this.pg, frames);
    for (const m of msgs) {
      const s = readyStatus(m);
      if (s) this.status = s;
    }
    return msgs;
  }

  private deliver(msgs: Uint8Array[]): void {
    for (const m of msgs) this.queue.push(m);
  }

  /**
   * The client's messages, in order. Runs of ordinary messages go to PGlite together; a
   * COPY FROM STDIN Query waits for its data (see copy-in.ts); a Parse of one is refused.
   */
  private async forward(msgs: Uint8Array[]): Promise<void> {
    if (this.queue.failed) throw this.queue.failed;
    let run: Uint8Array[] = [];
    const flush = async () => {
      if (run.length === 0) return;
      const frames = Buffer.concat(run);
      run = [];
      this.deliver(await this.exchange(frames));
    };
    for (const m of msgs) {
      const type = m[0]!;
      if (this.copyIn) {
        this.copyIn.push(m);
        // Flush and Sync are ignored by PostgreSQL during COPY; anything else ends it.
        if (type === COPY_DATA || type === SYNC || type === FLUSH) continue;
        await flush();
        const frames = Buffer.concat(this.copyIn);
        this.copyIn = null;
        const out = await this.exchange(frames);
        // The CopyInResponse was answered already.
        const at = out.findIndex((f) => f[0] === COPY_IN_RESPONSE);
        if (at >= 0) out.splice(at, 1);
        this.deliver(out);
        continue;
      }
      if (this.discarding) {
        if (type !== SYNC) continue;
        this.discarding = false;
      }
      if (EXTENDED_TYPES.has(type)) this.unsynced = true;
      else if (type === SYNC) this.unsynced = false;
      if ((type === QUERY || type === PARSE) && this.status !== 'E') {
        const text = queryText(m, type === PARSE);
        if (text.toLowerCase().includes('copy')) {
          const copies = copyFromStdin(await sqlParser(), text);
          if (copies.length > 0) {
            await flush();
            if (type === PARSE) {
              // PGlite cannot take the data of an extended-protocol COPY in the same call
              // as its Execute here; refused like any failed Parse (the rest until Sync is dropped).
              this.queue.push(errorResponse(SqlState.feature_not_supported, 'COPY FROM STDIN through the extended query protocol is not supported by the embedded data plane; send it as a simple query'));
              this.discarding = true;
              continue;
            }
            const first = copies[0]!;
            this.queue.push(copyInResponse(first.columns ?? (await this.columnCount(first.table)), first.binary));
            this.copyIn = [m];
            continue;
          }
        }
      }
      run.push(m);
    }
    await flush();
  }

  /** How many columns COPY of a whole table reads (0 when it cannot be told: PostgreSQL reports the error). */
  private async columnCount(table: string): Promise<number> {
    const literal = `'${table.replace(/'/g, "''")}'`;
    const sql = `SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass(${literal}) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`;
    const out = decodeBackend(await this.exchange(serialize.query(sql)));
    const row = out.find((m) => m.name === 'dataRow') as unknown as { fields: (string | null)[] } | undefined;
    return Number(row?.fields[0] ?? 0);
  }
}

const QUERY = 0x51; // Q
const PARSE = 0x50; // P
const SYNC = 0x53; // S
const FLUSH = 0x48; // H
const COPY_DATA = 0x64; // d
const COPY_IN_RESPONSE = 0x47; // G

/** The SQL text of a Query ('Q' + length + text\0) or a Parse ('P' + length + name\0 + text\0 ...). */
function queryText(frame: Uint8Array, parse: boolean): string {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = 5;
  if (parse) at = b.indexOf(0, at) + 1;
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end < 0 ? b.length : end);
}
