import os from 'node:os';
import { benchParser } from './parser.js';

/** `npm run bench`: every benchmark, each as a median of several runs. */
const r = benchParser(Number(process.env.BENCH_STATEMENTS ?? 100_000), Number(process.env.BENCH_RUNS ?? 5));
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log(
  `parser: ${r.statements} statements, median ${r.medianMs.toFixed(0)} ms of ${r.runsMs.length} runs ` +
    `(${r.runsMs.map((x) => x.toFixed(0)).join(', ')}) → ${r.perSecond.toLocaleString('en-US')} statements/s`,
);
