import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * A PGlite instance in a worker thread of its own. PGlite runs PostgreSQL synchronously in
 * WASM: in the main thread a query blocks the event loop for as long as it runs (measured:
 * an 870 ms query stopped every timer for 874 ms), initdb for several seconds. In a worker,
 * portcullis keeps serving every other session, its admin language and HTTP meanwhile, and an
 * instance that hangs (PGlite loops forever on some inputs) can be terminated.
 *
 * The worker's code is inline (no separate file to find under src/ or dist/): it opens the
 * instance, runs `execProtocolRaw` on the frames it is sent, one call at a time, and
 * answers with the bytes PGlite produced.
 */

const require = createRequire(import.meta.url);

/** Where the worker imports PGlite from (the same package the main thread would use). */
const PGLITE_URL = pathToFileURL(require.resolve('@electric-sql/pglite')).href;

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
let pg = null;
let chain = Promise.resolve();
async function handle(m) {
  if (m.op === 'open') {
    const { PGlite } = await import(workerData.module);
    const options = {};
    if (m.dataDir) options.dataDir = m.dataDir;
    if (m.tar) options.loadDataDir = new Blob([m.tar]);
    pg = await PGlite.create(options);
    return {};
  }
  if (m.op === 'template') {
    const { PGlite } = await import(workerData.module);
    const t = await PGlite.create(m.dataDir ? { dataDir: m.dataDir } : {});
    let tar = null;
    if (!m.dataDir) tar = new Uint8Array(await (await t.dumpDataDir('none')).arrayBuffer());
    await t.close();
    return tar ? { value: tar, transfer: [tar.buffer] } : {};
  }
  if (m.op === 'exec') {
    const out = await pg.execProtocolRaw(m.frames);
    return { value: out, transfer: [out.buffer] };
  }
  if (m.op === 'inTransaction') return { value: pg.isInTransaction() };
  if (m.op === 'close') {
    if (pg && !pg.closed) await pg.close();
    pg = null;
    return {};
  }
  throw new Error('unknown op ' + m.op);
}
parentPort.on('message', (m) => {
  chain = chain.then(async () => {
    try {
      const r = await handle(m);
      parentPort.postMessage({ id: m.id, ok: true, value: r.value }, r.transfer || []);
    } catch (e) {
      parentPort.postMessage({ id: m.id, ok: false, error: String((e && (e.stack || e.message)) || e), status: e && e.status });
    }
  });
});
`;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class PgliteHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;

  private constructor() {
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { module: PGLITE_URL } });
    this.worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error ?? 'PGlite failed'));
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`PGlite worker exited (${code})`)));
  }

  /** Opens an instance: an existing (or to be created) data directory, or a tarball into memory. */
  static async open(source: { dataDir: string } | { tar: Uint8Array }): Promise<PgliteHost> {
    const host = new PgliteHost();
    try {
      // The tarball is copied, not transferred: the template stays usable for the next database.
      await host.call('dataDir' in source ? { op: 'open', dataDir: source.dataDir } : { op: 'open', tar: source.tar });
    } catch (err) {
      await host.terminate();
      throw err;
    }
    return host;
  }

  /**
   * Runs initdb in a throwaway worker: into `dataDir` on disk, or in memory, returning the
   * data directory as a tarball.
   */
  static async makeTemplate(dataDir: string | null): Promise<Uint8Array | null> {
    const host = new PgliteHost();
    try {
      return (await host.call(dataDir ? { op: 'template', dataDir } : { op: 'template' })) as Uint8Array | null;
    } finally {
      await host.terminate();
    }
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  /** Frontend frames in, every backend frame PGlite produced out. */
  async exec(frames: Uint8Array): Promise<Uint8Array> {
    // Copied into a buffer of its own, which is handed over to the worker.
    const copy = new Uint8Array(frames);
    return (await this.call({ op: 'exec', frames: copy }, [copy.buffer])) as Uint8Array;
  }

  /** Whether the instance's session is inside a transaction block. */
  async inTransaction(): Promise<boolean> {
    return (await this.call({ op: 'inTransaction' })) as boolean;
  }

  /** Closes the instance cleanly (PGlite's shutdown), then ends the worker. */
  async close(): Promise<void> {
    if (this.dead) return;
    try {
      await this.call({ op: 'close' });
    } finally {
      await this.terminate();
    }
  }

  /** Ends the worker at once, whatever it is doing (a hung instance included). */
  async terminate(): Promise<void> {
    this.dead ??= new Error('PGlite instance closed');
    await this.worker.terminate();
  }

  private call(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }
}
