import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../support/server.js';

/** Module URLs a driver script imports: the build's (what `portcullis` runs) and the fs spy. */
export const DIST = (module: string) => pathToFileURL(path.join(ROOT, 'dist/src', module)).href;
export const SPY = pathToFileURL(path.join(ROOT, 'test/support/fs-spy.mjs')).href;

/**
 * Runs `code` (an ES module) in a Node process of its own, with the fs spy preloaded
 * (test/support/fs-spy.mjs: configured by `env`), the way the CLI runs the store: its
 * own event loop, the production file IO, the flusher thread. Killed after `timeoutMs`
 * (code null): a process that never exits is a failure, not a hang of the suite. A script
 * file, not `node -e`: an evaluated module ends its process by other rules.
 */
export function runDriver(code: string, env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const scriptDir = mkdtempSync(path.join(os.tmpdir(), 'pcu-driver-'));
  const script = path.join(scriptDir, 'driver.mjs');
  writeFileSync(script, code);
  const child = spawn(process.execPath, ['--import', SPY, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(scriptDir, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    }),
  );
}
