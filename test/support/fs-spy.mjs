/**
 * A test-only preload (`node --import <this file>`, or NODE_OPTIONS) that puts a slow disk
 * and a recorder under a real portcullis process, in every thread of it: Node runs --import
 * preloads in worker threads too, so the log's flusher thread is covered like the main one.
 * It replaces node:fs's own writeSync, fdatasync and fdatasyncSync (syncBuiltinESMExports
 * makes `import { fdatasyncSync } from 'node:fs'` see the replacement), so nothing in the
 * product changes for a test: what it observes is what the product asks the kernel for.
 *
 *   PCU_FS_SPY_FLUSH_MS=N   every fdatasync takes N ms longer (after the real one has returned)
 *   PCU_FS_SPY_TRACE=FILE   appends a line to FILE for each write to and fdatasync of a
 *                           catalog.log, in the order they happened, across threads:
 *                             W <thread> <offset> <end>   a write of [offset, end) returned
 *                             S <thread> <id>             an fdatasync is about to start
 *                             E <thread> <id> ok|<code>   it returned (after the delay)
 *                           The process under test may add its own lines (`trace` below).
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { threadId } from 'node:worker_threads';

const real = { writeSync: fs.writeSync, fdatasync: fs.fdatasync, fdatasyncSync: fs.fdatasyncSync, openSync: fs.openSync, readlinkSync: fs.readlinkSync };
const delayMs = Number(process.env.PCU_FS_SPY_FLUSH_MS ?? 0);
const traceFile = process.env.PCU_FS_SPY_TRACE;
// O_APPEND: each line lands whole at the end, so the file's order is the order of the calls.
const traceFd = traceFile ? real.openSync(traceFile, 'a') : null;
let syncs = 0;

/** Appends one line to the trace (exported for a driver running in the traced process). */
export function trace(line) {
  if (traceFd !== null) real.writeSync(traceFd, `${line}\n`);
}

const isLog = (fd) => {
  try {
    return real.readlinkSync(`/proc/self/fd/${fd}`).endsWith('/catalog.log');
  } catch {
    return false;
  }
};

const sleep = (ms) => ms > 0 && Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

fs.writeSync = function writeSync(fd, buffer, ...rest) {
  const n = real.writeSync.call(this, fd, buffer, ...rest);
  // (fd, buffer, offset, length, position): only positioned writes of bytes are the log's.
  const position = rest[2];
  if (traceFd !== null && typeof position === 'number' && typeof buffer !== 'string' && isLog(fd)) trace(`W ${threadId} ${position} ${position + n}`);
  return n;
};

fs.fdatasyncSync = function fdatasyncSync(fd) {
  const id = `${threadId}.${++syncs}`;
  const log = traceFd !== null && isLog(fd);
  if (log) trace(`S ${threadId} ${id}`);
  try {
    real.fdatasyncSync(fd);
  } catch (err) {
    if (log) trace(`E ${threadId} ${id} ${err.code}`);
    throw err;
  }
  sleep(delayMs);
  if (log) trace(`E ${threadId} ${id} ok`);
};

fs.fdatasync = function fdatasync(fd, callback) {
  const id = `${threadId}.${++syncs}`;
  const log = traceFd !== null && isLog(fd);
  if (log) trace(`S ${threadId} ${id}`);
  real.fdatasync(fd, (err) =>
    setTimeout(() => {
      if (log) trace(`E ${threadId} ${id} ${err ? err.code : 'ok'}`);
      callback(err);
    }, err ? 0 : delayMs),
  );
};

syncBuiltinESMExports();
