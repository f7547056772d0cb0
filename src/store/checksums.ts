import { closeSync, fstatSync, openSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FrameReader } from './frames.js';
import { workerScript } from './worker-url.js';

/** Every record's checksum passed (`records` of them), or the first that did not. */
export type ChecksumVerdict = { records: number } | { offset: number; reason: string };

/**
 * Checks the checksum of every record from `from` to the end of the file: the framing is
 * { u32 length | u32 crc32 | body } (log-format.ts); nothing is decoded. Synchronous: it
 * runs on a worker thread (`checkAside`), where blocking reads cost the main thread nothing.
 */
export function walkChecksums(file: string, from: number): ChecksumVerdict {
  const fd = openSync(file, 'r');
  try {
    const reader = new FrameReader(fd, from, fstatSync(fd).size);
    for (let records = 0; ; records++) {
      const offset = reader.offset;
      if (reader.atEnd) return { records };
      const f = reader.frame();
      if (Buffer.isBuffer(f)) continue;
      const reason = f.kind === 'short' ? 'the snapshot is cut short' : f.kind === 'length' ? `record length ${f.length} is implausible` : 'checksum mismatch';
      return { offset, reason };
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * `walkChecksums` on a worker thread, while the main thread decodes the same file: at
 * start-up the second core checks the snapshot's checksums (a fifth of the time at a
 * million users) instead of idling. If the worker cannot run, the check runs here
 * instead: slower, never skipped.
 */
export function checkAside(file: string, from: number, script: URL = workerScript('checksum-worker', import.meta.url)): Promise<ChecksumVerdict> {
  const onWorker = new Promise<ChecksumVerdict>((resolve, reject) => {
    const worker = new Worker(script, { workerData: { file, from } });
    worker.once('message', (v: ChecksumVerdict) => resolve(v));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the checksum worker exited (code ${code}) without a verdict`)));
  });
  return onWorker.catch(() => walkChecksums(file, from));
}
