import { fdatasyncSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { FD, STOP, TICKET } from './flusher.js';

/** Worker thread of `ThreadFlusher`: one fdatasync after another while tickets are asked for. */
const ctl = new Int32Array(workerData.ctl as SharedArrayBuffer);
let flushed = 0;
while (Atomics.load(ctl, STOP) === 0) {
  const ticket = Atomics.load(ctl, TICKET);
  if (ticket === flushed) {
    Atomics.wait(ctl, TICKET, flushed);
    continue;
  }
  try {
    fdatasyncSync(Atomics.load(ctl, FD));
    parentPort!.postMessage({ ticket });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    parentPort!.postMessage({ ticket, code: e.code, message: e.message });
  }
  flushed = ticket;
}
