import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Removes temp files left by a crash. Called at start-up, before the server listens, so no write of this
 * process can be in progress. Returns how many files were removed.
 */
export async function sweepTempFiles(tmpDir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const p = path.join(tmpDir, name);
    const s = await stat(p).catch(() => undefined);
    if (s?.isFile()) {
      await rm(p, { force: true });
      removed++;
    }
  }
  return removed;
}
