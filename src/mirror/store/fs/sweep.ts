import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { WRITE_SUFFIX } from './fs-content-writer.js';

/**
 * Removes temp files left by a crash, except the writes of upload sessions (`keep`: write ids), which a
 * client may resume. Called at start-up, before the server listens, so no write of this process can be in
 * progress. Returns how many files were removed.
 */
export async function sweepTempFiles(tmpDir: string, keep: ReadonlySet<string> = new Set()): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    if (name.endsWith(WRITE_SUFFIX) && keep.has(name.slice(0, -WRITE_SUFFIX.length))) continue;
    const p = path.join(tmpDir, name);
    const s = await stat(p).catch(() => undefined);
    if (s?.isFile()) {
      await rm(p, { force: true });
      removed++;
    }
  }
  return removed;
}
