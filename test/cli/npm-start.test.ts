import { spawn } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/server.js';

// The README's first command is `npm install && npm start`: the build happens at install
// (`prepare`), so `npm start` must serve the compiled code as it is, never compile again
// (it took 45 s per start when it did). How fast it listens is measured, not asserted here.
describe('npm start', () => {
  it('starts the built server without compiling', async () => {
    const built = path.join(ROOT, 'dist/src/cli/main.js');
    const before = statSync(built).mtimeMs;
    const data = mkdtempSync(path.join(os.tmpdir(), 'pcu-npm-start-'));
    const child = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORTCULLIS_BOOTSTRAP_PASSWORD: 'x', PORTCULLIS_DATA: path.join(data, 'd'), PORTCULLIS_PORT: '0', PORTCULLIS_HTTP_PORT: '0' },
    });
    let err = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes(' listening on ')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`npm start exited ${code}: ${err}`)));
      });
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    expect(err).toMatch(/portcullis \S+ listening on 127\.0\.0\.1:\d+ \(pgwire\)/);
    expect(statSync(built).mtimeMs).toBe(before);
  });
});
