import { spawn } from 'node:child_process';
import { ADMIN_PASSWORD } from './server.js';

export interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real psql (-X: no ~/.psqlrc) against a test server. */
export function psql(port: number, args: string[], opts: { user?: string; password?: string; input?: string; db?: string; conninfo?: string } = {}): Promise<PsqlResult> {
  // A libpq connection string (sslmode=..., channel_binding=...) replaces host, port and user.
  const target = opts.conninfo ? ['-d', opts.conninfo] : ['-h', '127.0.0.1', '-p', String(port), '-U', opts.user ?? 'admin', ...(opts.db ? ['-d', opts.db] : [])];
  const child = spawn('psql', ['-X', ...target, ...args], {
    env: { ...process.env, PGPASSWORD: opts.password ?? ADMIN_PASSWORD, PGCONNECT_TIMEOUT: '10', LANG: 'C.UTF-8', PGCLIENTENCODING: 'UTF8' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
