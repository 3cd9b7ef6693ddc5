import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export interface StaleTempFile {
  file: string;
  size: number;
  mtime: number;
}

/**
 * Temp files not written for `maxAgeMs` and not held by a running download: what a crash or a killed
 * process left behind. A running download writes its file at least once per body timeout, so a file
 * this old belongs to nobody.
 */
export async function findStaleTempFiles(tmpDir: string, opts: { now: number; maxAgeMs: number; inUse?: (file: string) => boolean }): Promise<StaleTempFile[]> {
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: StaleTempFile[] = [];
  for (const name of names.sort()) {
    const file = path.join(tmpDir, name);
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile() || opts.now - s.mtimeMs < opts.maxAgeMs || opts.inUse?.(file)) continue;
    out.push({ file, size: s.size, mtime: s.mtimeMs });
  }
  return out;
}

export async function removeTempFiles(files: StaleTempFile[]): Promise<number> {
  let bytes = 0;
  for (const f of files) {
    await rm(f.file, { force: true });
    bytes += f.size;
  }
  return bytes;
}
