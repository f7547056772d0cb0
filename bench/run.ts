import os from 'node:os';
import { benchParser } from './parser.js';
import { benchAgainstPostgres } from './pgbench.js';
import { measureScale } from './scale.js';
import { benchHttp } from './http.js';
import { fdatasyncMicros } from './disk.js';
import { benchEngine } from './engine.js';
import { benchIssuer } from './issuer.js';
import { benchDataPlane } from './dataplane.js';
import { benchGolden } from './golden.js';
import { benchCatalogPg } from './catalog-pg.js';
import { benchPool } from './pool.js';

/**
 * `npm run bench`: every benchmark, each as a median of several runs. BENCH_ONLY=parser|engine|issuer|pg|catalog-pg|dataplane|pool|golden|http|scale
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
if (!only || only === 'engine') {
  const r = await benchEngine(Number(process.env.BENCH_PAIRS ?? 10_000), Number(process.env.BENCH_RUNS ?? 5));
  console.log(
    `engine: GRANT + REVOKE in-process (data directory on tmpfs), median ${r.medianUs.toFixed(1)} µs per pair of ${r.runsUs.length} runs ` +
      `(${r.runsUs.map((x) => x.toFixed(1)).join(', ')})`,
  );
}
if (!only || only === 'issuer') {
  const r = await benchIssuer(Number(process.env.BENCH_TOKENS ?? 2000));
  const f = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`issuer: access tokens (API key grant, in memory) issued ${f(r.issuedPerSecond)}/s; verified ${f(r.firstVerifyPerSecond)}/s the first time, ${f(r.repeatVerifyPerSecond)}/s again (cached)`);
}
if (!only || only === 'pg') {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const disk = fdatasyncMicros();
  console.log(`disk: fdatasync after a 300-byte append, p10/p50/p90 ${disk.p10.toFixed(0)} / ${disk.p50.toFixed(0)} / ${disk.p90.toFixed(0)} µs (every durable commit waits at least this)`);
  console.log(`against PostgreSQL (pgbench, simple protocol, median of ${runs} runs of ${seconds} s, durable commits on both):`);
  await benchAgainstPostgres(runs, seconds, (s) => console.log(s));
}
if (!only || only === 'catalog-pg') {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  console.log(`the catalog in PostgreSQL (--catalog) against the embedded log, one instance (pgbench, median of ${runs} runs of ${seconds} s, durable commits on both), and from one instance to another:`);
  await benchCatalogPg(runs, seconds, Number(process.env.BENCH_COMMITS ?? 300), (s) => console.log(s));
}
if (!only || only === 'dataplane') {
  // Longer runs than the admin workloads': a primary-key SELECT is short, the rounds are many.
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  console.log(`data plane (pgbench, primary-key SELECT on ${(10_000).toLocaleString('en-US')} rows, 8 clients, median of ${runs} runs of ${seconds} s, interleaved):`);
  await benchDataPlane(runs, seconds, (s) => console.log(s));
}
if (!only || only === 'pool') {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  console.log(`transaction pooling against PgBouncer (pgbench -S, scale 10, median of ${runs} runs of ${seconds} s, interleaved):`);
  await benchPool(runs, seconds, (s) => console.log(s));
}
if (!only || only === 'golden') {
  await benchGolden(Number(process.env.BENCH_GOLDEN_FILES ?? 100), Number(process.env.BENCH_GOLDEN_JOBS ?? 2), (s) => console.log(s));
}
if (!only || only === 'http') {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  console.log(`HTTP API against a bare node:http server (the floor), median of ${runs} runs of ${seconds} s:`);
  await benchHttp(runs, seconds, (s) => console.log(s));
}
if (!only || only === 'scale') {
  const big = Number(process.env.BENCH_SCALE_USERS ?? 1_000_000);
  const samples = Number(process.env.BENCH_SAMPLES ?? 50);
  const small = await measureScale(1000, 100, samples);
  const large = await measureScale(big, big / 10, samples);
  const line = (f: typeof small) =>
    `${f.users.toLocaleString('en-US')} users (+ as many API keys, ${(f.users / 10).toLocaleString('en-US')} grants): start-up ${(f.startupMs / 1000).toFixed(2)} s (median of ${Number(process.env.BENCH_STARTS ?? 3)}), ` +
    `RSS ${f.rssMb.toFixed(0)} MB (peak ${f.peakRssMb.toFixed(0)} MB), login ${f.loginMs.toFixed(1)} ms, ALTER USER ${f.alterMs.toFixed(2)} ms (medians of ${samples})`;
  console.log(`scale:\n  ${line(small)}\n  ${line(large)}`);
  console.log(`  at ${big.toLocaleString('en-US')} users: login ${(large.loginMs / small.loginMs).toFixed(2)}×, ALTER USER ${(large.alterMs / small.alterMs).toFixed(2)}× the figures at 1,000 (target ≤ 2×); start-up target ≤ 10 s: ${large.startupMs <= 10_000 ? 'met' : 'NOT met'}; RSS target ≤ 1.5 GB: ${large.rssMb <= 1536 ? 'met' : 'NOT met'}`);
}
