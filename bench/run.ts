import os from 'node:os';
import { benchParser } from './parser.js';
import { benchAgainstPostgres } from './pgbench.js';

/**
 * `npm run bench`: every benchmark, each as a median of several runs. BENCH_ONLY=parser|pg
 * picks one; BENCH_RUNS and BENCH_SECONDS set the pgbench runs per figure and their length.
 */
const only = process.env.BENCH_ONLY;
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
if (!only || only === 'parser') {
  const r = benchParser(Number(process.env.BENCH_STATEMENTS ?? 100_000), Number(process.env.BENCH_RUNS ?? 5));
  console.log(
    `parser: ${r.statements} statements, median ${r.medianMs.toFixed(0)} ms of ${r.runsMs.length} runs ` +
      `(${r.runsMs.map((x) => x.toFixed(0)).join(', ')}) → ${r.perSecond.toLocaleString('en-US')} statements/s`,
  );
}
if (!only || only === 'pg') {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  console.log(`against PostgreSQL (pgbench, simple protocol, median of ${runs} runs of ${seconds} s, durable commits on both):`);
  await benchAgainstPostgres(runs, seconds, (s) => console.log(s));
}
