import { readFileSync } from 'node:fs';
import path from 'node:path';
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
// A data directory from a tarball, written straight into the in-memory file system before
// PostgreSQL starts (PGlite then finds a database and resumes it). PGlite's own loadDataDir
// reads the tarball through a Blob and copies every file twice: 0.7 s of a 1.5 s start
// here, against a few milliseconds for this. The files keep their bytes in the tarball this
// worker was sent (its own copy): MEMFS owns them from then on (canOwn).
function templateFs(MemoryFS, root, tar) {
  class TemplateFs extends MemoryFS {
    async initialSyncFs() {
      const FS = this.pg.Module.FS;
      const text = new TextDecoder();
      const str = (a, b) => { let e = a; while (e < b && tar[e] !== 0) e++; return text.decode(tar.subarray(a, e)); };
      const oct = (a, b) => parseInt(str(a, b).trim() || '0', 8);
      FS.mkdirTree(root);
      for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
        let name = str(at, at + 100);
        if (str(at + 257, at + 263).startsWith('ustar')) { const prefix = str(at + 345, at + 500); if (prefix) name = prefix + '/' + name; }
        const size = oct(at + 124, at + 136);
        const mtime = oct(at + 136, at + 148) * 1000;
        const type = tar[at + 156];
        at += 512;
        const path = root + '/' + name.split('/').filter((p) => p !== '').join('/');
        if (type === 53 /* '5' */) FS.mkdirTree(path);
        else if (type === 48 /* '0' */ || type === 0) {
          FS.writeFile(path, tar.subarray(at, at + size), { canOwn: true });
          FS.utime(path, mtime, mtime);
        }
        at += Math.ceil(size / 512) * 512;
      }
    }
  }
  return new TemplateFs();
}
async function handle(m) {
  if (m.op === 'open') {
    const { PGlite, MemoryFS } = await import(workerData.module);
    const options = {};
    if (m.dataDir) options.dataDir = m.dataDir;
    if (m.tar) options.fs = templateFs(MemoryFS, PGlite.paths.PGDATA, m.tar);
    if (m.wasm) options.pgliteWasmModule = m.wasm;
    if (m.fsBundle) options.fsBundle = new Blob([m.fsBundle]);
    if (m.settings) options.startParams = [...PGlite.defaultStartParams, ...m.settings.flatMap((s) => ['-c', s])];
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
    // No file-system sync after each call: for the in-memory and the Node file systems (the
    // two used here) PGlite's syncToFs does nothing but take a mutex, 0.1 ms of a 0.3 ms call.
    const out = await pg.execProtocolRaw(m.frames, { syncToFs: false });
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

/** What every worker would otherwise load and compile again (PostgreSQL's WASM, 9 MB; its files, 6 MB). */
interface Compiled {
  wasm: unknown;
  fsBundle: Uint8Array;
}

let compiledOnce: Promise<Compiled> | null = null;

/**
 * PGlite's WASM module, compiled once in this thread and handed to each worker (a compiled
 * module crosses to a worker without being compiled again), and its file bundle read once:
 * an instance starts in about 0.8 s instead of 1.3 s here.
 */
function compiled(): Promise<Compiled> {
  compiledOnce ??= (async () => {
    const dir = path.dirname(require.resolve('@electric-sql/pglite'));
    // lib has no DOM types: WebAssembly is reached as the global it is in Node.
    const wasm = await (globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<unknown> } }).WebAssembly.compile(readFileSync(path.join(dir, 'pglite.wasm')));
    return { wasm, fsBundle: new Uint8Array(readFileSync(path.join(dir, 'pglite.data'))) };
  })();
  compiledOnce.catch(() => (compiledOnce = null));
  return compiledOnce;
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

  /**
   * Opens an instance: an existing (or to be created) data directory, or a tarball into
   * memory. `settings` (`name=value`) are given to PostgreSQL at start, after PGlite's own.
   */
  static async open(source: { dataDir: string } | { tar: Uint8Array }, settings: readonly string[] = []): Promise<PgliteHost> {
    const host = new PgliteHost();
    try {
      // The tarball is copied, not transferred: the template stays usable for the next database.
      const s = { ...(settings.length > 0 ? { settings: [...settings] } : {}), ...(await compiled()) };
      await host.call('dataDir' in source ? { op: 'open', dataDir: source.dataDir, ...s } : { op: 'open', tar: source.tar, ...s });
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
