import { closeSync, constants, fdatasync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { open, rename, writeFile } from 'node:fs/promises';

/** The file helpers every data-directory file shares (catalog log, snapshot, audit trail). */

/** Writes all of `data` at `position`: a write may be short, a file must get every byte or an error. */
export function writeAllSync(fd: number, data: Buffer, position: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, position + off);
}

/** Reads up to `n` bytes at `position` into `buf`, however many reads it takes; fewer only at the end of the file. */
export function readAllSync(fd: number, buf: Buffer, n: number, position: number): number {
  let got = 0;
  while (got < n) {
    const r = readSync(fd, buf, got, n - got, position + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

/** fdatasync on the thread pool. */
export function datasync(fd: number): Promise<void> {
  return new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync of a directory: a file created or renamed in it survives a crash only after this. */
export function syncDirSync(dir: string): void {
  const d = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}

/** The same, off the event loop. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Replaces `file` by `data` whole (a temporary file renamed over it): a reader sees old or new, never half. */
export async function replaceFile(file: string, data: Buffer): Promise<void> {
  await writeFile(`${file}.tmp`, data, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
