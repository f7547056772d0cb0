import { writeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileIo, LOG_FILE, type LogIo } from '../../src/store/log-store.js';
import { decodeLog } from '../../src/store/log-format.js';
import type { RunningServer } from '../../src/server.js';
import { client, loginError, startTestServer } from '../support/server.js';

/**
 * A full disk (ENOSPC) or a failing one (EIO) while committing: the statement fails with
 * 53100 / 58030, nothing half-written stays in the log, reads and logins go on, and writes
 * work again once the disk does.
 */
type Fault = 'none' | 'ENOSPC' | 'EIO' | 'short-then-ENOSPC';

function faultyIo(): { io: LogIo; set: (f: Fault) => void } {
  let fault: Fault = 'none';
  const fail = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
  return {
    set: (f) => (fault = f),
    io: {
      write(fd, data, position) {
        if (fault === 'ENOSPC' || fault === 'EIO') throw fail(fault);
        if (fault === 'short-then-ENOSPC') {
          writeSync(fd, data, 0, Math.floor(data.length / 2), position); // half a record reaches the file
          throw fail('ENOSPC');
        }
        fileIo.write(fd, data, position);
      },
      datasync: (fd, inline) => fileIo.datasync(fd, inline),
    },
  };
}

let dir: string;
let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
  await rm(dir, { recursive: true, force: true });
});

describe('disk full and I/O errors', () => {
  it('fail the statement cleanly, keep serving, and recover when space is back', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-full-'));
    const disk = faultyIo();
    server = await startTestServer({ dataDir: dir, logIo: disk.io });
    const c = await client(server.port);
    await c.query("CREATE USER before_full PASSWORD 'x'");

    disk.set('short-then-ENOSPC');
    await expect(c.query('CREATE USER during_full')).rejects.toMatchObject({
      code: '53100',
      message: 'could not write to the catalog log: no space left on device',
    });
    disk.set('ENOSPC');
    await expect(c.query('BEGIN; CREATE USER tx_a; CREATE USER tx_b; COMMIT')).rejects.toMatchObject({ code: '53100' });
    disk.set('EIO');
    await expect(c.query('DROP USER before_full')).rejects.toMatchObject({ code: '58030' });

    // Reads and logins still work while writes fail.
    expect((await c.query('SHOW USERS')).rows.map((r) => r.name)).toEqual(['admin', 'before_full']);
    expect(await loginError(server.port, 'before_full', 'x')).toBeNull();

    disk.set('none');
    await c.query('CREATE USER after_full');
    await c.end();
    await server.close();
    server = null;

    // The log holds whole records only: no torn tail, nothing of the failed commits.
    const log = decodeLog(await readFile(path.join(dir, LOG_FILE)));
    expect(log.kind).toBe('ok');
    server = await startTestServer({ dataDir: dir });
    const again = await client(server.port);
    expect((await again.query('SHOW USERS')).rows.map((r) => r.name)).toEqual(['admin', 'after_full', 'before_full']);
    await again.end();
  });
});
