import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DETERMINISTIC_PLANE_SETTINGS, memoryTemplate } from '../src/dataplane/embedded.js';
import { PgliteHost } from '../src/dataplane/pglite-host.js';
import { GoldenPlanes } from '../src/golden/planes.js';
import { startServer } from '../src/server.js';
import { PsqlWire } from '../src/psql/wire.js';
import { runLikePsql } from '../src/psql/run-script.js';
import { DETERMINISTIC_BOOTSTRAP_PASSWORD } from '../src/engine/deterministic.js';
import { median } from './servers.js';

/**
 * `portcullis golden` on the embedded data plane (`BENCH_ONLY=golden`): N copies of
 * fixtures/shop.sql (three tables, fifty rows loaded with COPY, four principals, twenty
 * queries acting as them) run by the CLI with `--jobs 2`, as a CI would run them, wall
 * time and CPU; then where one file's time goes, in this process, file after file:
 * starting its server, logging in (twice: `\c shop`), its statements (the calls to PGlite
 * among them), giving its instance back to the pool (reset and fingerprint); and what the
 * pool saves: an instance opened from the template, with PGlite's default and with
 * deterministic mode's settings, and the template itself (initdb).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE = path.join(ROOT, 'fixtures', 'shop.sql');

export interface GoldenFigures {
  files: number;
  jobs: number;
  /** The CLI's run: wall seconds, CPU seconds (user + system, all threads), and its own summary line. */
  wallS: number;
  cpuS: number;
  summary: string;
  /** One file in this process, medians over the files after the first (ms). */
  perFile: { start: number; login: number; statements: number; pglite: number; pgliteCalls: number; release: number; total: number };
  /** Opening an instance from the template (ms, median of 3): PGlite's defaults, deterministic mode's settings. */
  openDefaultMs: number;
  openSmallMs: number;
  /** initdb into a fresh template (ms), or null when not measured (BENCH_GOLDEN_INITDB=0). */
  initdbMs: number | null;
}

function copies(n: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-golden-'));
  const out = FIXTURE.replace(/\.sql$/, '.out');
  for (let i = 1; i <= n; i++) {
    const name = `shop_${String(i).padStart(3, '0')}`;
    copyFileSync(FIXTURE, path.join(dir, `${name}.sql`));
    copyFileSync(out, path.join(dir, `${name}.out`));
  }
  return dir;
}

/** The CLI on `dir`, with the children's CPU from bash's `times`. */
function runCli(dir: string, jobs: number): { wallS: number; cpuS: number; summary: string } {
  const started = performance.now();
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${path.join(ROOT, 'bin', 'portcullis.js')}" golden --jobs ${jobs} "${dir}"; echo "status $?"; times`], {
    encoding: 'utf8',
    env: { ...process.env, PORTCULLIS_BOOTSTRAP_PASSWORD: '' },
  });
  const wallS = (performance.now() - started) / 1000;
  const summary = /^\d+ files, .*$/m.exec(r.stdout)?.[0] ?? `no summary: ${r.stdout.slice(-500)}${r.stderr}`;
  // `times`: the shell's user and system time, then its children's.
  const lines = r.stdout.trim().split('\n');
  const secs = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  };
  const [u, s] = (lines[lines.length - 1] ?? '').split(/\s+/);
  return { wallS, cpuS: secs(u ?? '') + secs(s ?? ''), summary };
}

async function perFile(n: number): Promise<GoldenFigures['perFile']> {
  const text = readFileSync(FIXTURE, 'utf8');
  const planes = new GoldenPlanes();
  const calls = { n: 0, ms: 0 };
  const exec = PgliteHost.prototype.exec;
  PgliteHost.prototype.exec = async function (this: PgliteHost, frames: Uint8Array) {
    const t = performance.now();
    try {
      return await exec.call(this, frames);
    } finally {
      calls.n++;
      calls.ms += performance.now() - t;
    }
  };
  const rows: GoldenFigures['perFile'][] = [];
  try {
    for (let i = 0; i < n; i++) {
      calls.n = 0;
      calls.ms = 0;
      const t0 = performance.now();
      const plane = await planes.open();
      const server = await startServer({
        host: '127.0.0.1',
        port: 0,
        httpPort: null,
        dataDir: null,
        bootstrapUser: 'admin',
        bootstrapPassword: DETERMINISTIC_BOOTSTRAP_PASSWORD,
        deterministic: true,
        dataPlane: plane,
      });
      const t1 = performance.now();
      const target = { host: '127.0.0.1', port: server.port, user: 'admin', password: DETERMINISTIC_BOOTSTRAP_PASSWORD, database: 'default', sslmode: 'disable' as const, sslrootcert: null, connectTimeoutMs: 10_000 };
      let login = 0;
      await runLikePsql(text, {
        user: 'admin',
        connect: async (db) => {
          const a = performance.now();
          const c = await PsqlWire.connect(target, db);
          login += performance.now() - a;
          return c;
        },
      });
      const t2 = performance.now();
      await server.close();
      const pglite = { n: calls.n, ms: calls.ms };
      const t3 = performance.now();
      await planes.close(plane);
      const t4 = performance.now();
      if (i > 0) rows.push({ start: t1 - t0, login, statements: t2 - t1 - login, pglite: pglite.ms, pgliteCalls: pglite.n, release: t4 - t3, total: t4 - t0 });
    }
  } finally {
    PgliteHost.prototype.exec = exec;
    await planes.shutdown();
  }
  const m = (k: keyof GoldenFigures['perFile']) => median(rows.map((r) => r[k]));
  return { start: m('start'), login: m('login'), statements: m('statements'), pglite: m('pglite'), pgliteCalls: m('pgliteCalls'), release: m('release'), total: m('total') };
}

async function openMs(settings: readonly string[]): Promise<number> {
  const { tar } = await memoryTemplate();
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const pg = await PgliteHost.open({ tar }, settings);
    times.push(performance.now() - t);
    await pg.close();
  }
  return median(times);
}

export async function benchGolden(files: number, jobs: number, log: (s: string) => void): Promise<GoldenFigures> {
  const dir = copies(files);
  try {
    // The template is made (or read) once before timing: a CI machine keeps it in its temporary directory.
    await memoryTemplate();
    const cli = runCli(dir, jobs);
    log(`golden: ${files} copies of fixtures/shop.sql, --jobs ${jobs}, embedded: ${cli.wallS.toFixed(1)} s wall, ${cli.cpuS.toFixed(1)} s CPU (${cli.summary}); target ≤ 30 s for 100: ${files === 100 ? (cli.wallS <= 30 ? 'met' : 'NOT met') : 'n/a'}`);
    const f = await perFile(Number(process.env.BENCH_GOLDEN_SAMPLES ?? 21));
    log(
      `  one file, in-process, one at a time (medians): ${f.total.toFixed(0)} ms = server start ${f.start.toFixed(1)} + two logins ${f.login.toFixed(1)} + statements ${f.statements.toFixed(0)} ` +
        `(of which ${f.pgliteCalls.toFixed(0)} PGlite calls, ${f.pglite.toFixed(0)} ms) + instance reset ${f.release.toFixed(1)}`,
    );
    const openDefaultMs = await openMs([]);
    const openSmallMs = await openMs(DETERMINISTIC_PLANE_SETTINGS);
    log(`  an instance opened from the template instead of a reset one: ${openDefaultMs.toFixed(0)} ms with PGlite's settings, ${openSmallMs.toFixed(0)} ms with ${DETERMINISTIC_PLANE_SETTINGS.join(' ')} (medians of 3)`);
    let initdbMs: number | null = null;
    if (process.env.BENCH_GOLDEN_INITDB !== '0') {
      const t = performance.now();
      await PgliteHost.makeTemplate(null);
      initdbMs = performance.now() - t;
      log(`  making the template (initdb, once per machine and PGlite version): ${(initdbMs / 1000).toFixed(1)} s`);
    }
    return { files, jobs, ...cli, perFile: f, openDefaultMs, openSmallMs, initdbMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
