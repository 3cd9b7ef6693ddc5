import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a small file atomically: temp file in the same directory, data synced, renamed over the target.
 * Readers see the old content or the new, never a half-written file.
 */
export async function writeFileAtomic(target: string, data: Buffer | string, tmpDir: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  await mkdir(tmpDir, { recursive: true });
  const temp = path.join(tmpDir, `${Date.now()}-${randomBytes(6).toString('hex')}.small`);
  const fh = await open(temp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
