import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export const LOCK_FILE = 'portcullis.pid';

/**
 * One owner per data directory: a lock file holding the owner's PID, created
 * exclusively. A lock left by a process that no longer exists (kill -9) is taken over with
 * a warning; a live owner is refused at once, by PID.
 */
export async function lockDataDir(dir: string, warn: (line: string) => void): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.sync();
      await fh.close();
      return async () => {
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new Error(
        `the data directory ${path.resolve(dir)} is in use by another portcullis process (PID ${holder}); ` +
          'stop it first, or use another --data directory',
      );
    }
    warn(`warning: ${file}: taking over a lock left by process ${holder || '(unknown)'}, which is no longer running`);
    await rm(file, { force: true });
  }
  throw new Error(`could not lock the data directory ${path.resolve(dir)}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else — still a live owner.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
