import { parentPort, workerData } from 'node:worker_threads';
import { walkChecksums } from './checksums.js';

/** Worker thread entry of `checkAside` (checksums.ts). */
const { file, from } = workerData as { file: string; from: number };
parentPort!.postMessage(walkChecksums(file, from));
