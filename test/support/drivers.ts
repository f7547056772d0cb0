import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { RunningServer } from '../../src/server.js';
import { client, ROOT, startTestServer } from './server.js';

/**
 * Driver interop tests (test/drivers/): each file starts one server and runs one program in
 * the driver's own language that does every step and prints one JSON line per step. The
 * test then asserts what the program saw, step by step.
 */

/** Objects that give every SHOW statement non-empty rows of every column type it sends. */
export const DRIVER_SETUP = [
  'CREATE DATABASE prod;',
  'CREATE ROLE analysts;',
  'GRANT READ ON DATABASE prod TO analysts;',
  "CREATE USER alice WITH PASSWORD 'alice pw' ROLE readwrite;",
  'GRANT analysts TO alice;',
  "GRANT READ, WRITE ON DATABASE prod TO alice VALID UNTIL '2099-01-01 00:00:00+00';",
  "GRANT SCOPE 'read:orders', 'read:users' TO alice;",
  "CREATE API KEY 'prod-reader' FOR alice WITH DATABASES (prod) ROLE readonly SCOPES ('read:orders', 'read:users') EXPIRES IN '90 days';",
  "CREATE SERVICE ACCOUNT 'batch' FOR DATABASE prod;",
  "CREATE OIDC PROVIDER auth0 WITH (issuer = 'https://acme.example/', jwks_url = 'https://acme.example/jwks', audience = 'api');",
  'CREATE RLS POLICY own_orders ON prod.orders FOR READ USING (customer_id = $auth.id);',
];

/** A server for one driver file, with DRIVER_SETUP applied (through node-postgres). */
export async function startDriverServer(): Promise<RunningServer> {
  const server = await startTestServer();
  try {
    const c = await client(server.port);
    try {
      for (const sql of DRIVER_SETUP) await c.query(sql);
    } finally {
      await c.end();
    }
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

/** Every SHOW statement of the admin language (SPEC §3), each run as a prepared statement. */
export const SHOW_STATEMENTS = [
  'SHOW USERS',
  'SHOW AUTH',
  'SHOW TENANTS',
  'SHOW DATABASES',
  'SHOW ROLES',
  'SHOW GRANTS',
  'SHOW GRANTS FOR alice',
  'SHOW PERMISSIONS',
  'SHOW LOCKOUTS',
  'SHOW AUDIT LOG',
  'SHOW AUDIT LOG LIMIT 5',
  'SHOW API KEYS',
  'SHOW API KEYS FOR alice',
  'SHOW SERVICE ACCOUNTS',
  'SHOW OIDC PROVIDERS',
  'SHOW RLS POLICIES',
  'SHOW RLS POLICIES ON prod.orders',
  'SHOW ALL',
  'SHOW server_version',
  'SHOW TRANSACTION ISOLATION LEVEL',
  'SHOW TIME ZONE',
  'SHOW SESSION AUTHORIZATION',
];

/** What a driver program reports for one step. */
export type Step = { step: string; ok: true; value?: unknown } | { step: string; ok: false; sqlstate: string | null; error: string };

export interface ProgramRun {
  code: number | null;
  stderr: string;
  steps: Map<string, Step>;
}

/** Debian's Python, where python3-asyncpg and friends are installed (not a pyenv shim). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const PGJDBC_JAR = '/usr/share/java/postgresql.jar';

const INSTALL = 'run `bash scripts/test-deps.sh` (it installs the Debian packages the driver tests need)';

/** Fails (never skips) when a Python driver is missing, naming the package to install. */
export function requirePython(modules: Record<string, string>): void {
  for (const [module, pkg] of Object.entries(modules)) {
    const r = spawnSync(SYSTEM_PYTHON, ['-c', `import ${module}`], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`${SYSTEM_PYTHON} cannot import ${module}: install it with \`sudo apt-get install -y ${pkg}\`, or ${INSTALL}`);
    }
  }
}

/** Fails when java or pgJDBC is missing, naming the packages to install. */
export function requireJava(): void {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const jar = spawnSync('test', ['-r', PGJDBC_JAR]);
  if (java.status !== 0 || jar.status !== 0) {
    throw new Error(`java or ${PGJDBC_JAR} is missing: install them with \`sudo apt-get install -y default-jdk-headless libpostgresql-jdbc-java\`, or ${INSTALL}`);
  }
}

/** Runs `command args` to the end and collects its JSON step lines. */
export function runProgram(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProgramRun> {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const steps = new Map<string, Step>();
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const s = JSON.parse(line) as Step;
        steps.set(s.step, s);
      }
      resolve({ code, stderr, steps });
    });
  });
}

/** A Python program under test/drivers/programs/, given the port, password and statement lists. */
export function runPython(file: string, port: number, password: string): Promise<ProgramRun> {
  return runProgram(SYSTEM_PYTHON, [path.join(ROOT, 'test/drivers/programs', file), String(port), password, JSON.stringify(SHOW_STATEMENTS)], {
    PYTHONDONTWRITEBYTECODE: '1',
  });
}

/** The Java program, run as a single source file (java compiles it in memory) against pgJDBC. */
export function runJava(file: string, port: number, password: string): Promise<ProgramRun> {
  return runProgram('java', ['-cp', PGJDBC_JAR, path.join(ROOT, 'test/drivers/programs', file), String(port), password, JSON.stringify(SHOW_STATEMENTS)]);
}

/** The step's report, failing with what the program said when it is missing. */
export function stepOf(run: ProgramRun, name: string): Step {
  const s = run.steps.get(name);
  if (!s) throw new Error(`the program reported no step "${name}" (exit ${run.code}); stderr:\n${run.stderr}`);
  return s;
}

/** A step that must have succeeded: its value (an error shows the program's own error). */
export function okValue(run: ProgramRun, name: string): unknown {
  const s = stepOf(run, name);
  if (!s.ok) throw new Error(`step "${name}" failed: ${s.sqlstate ?? ''} ${s.error}`);
  return s.value;
}
