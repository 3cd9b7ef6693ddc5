import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a file so that readers (the mirror's htpasswd watcher, containerd reading hosts.toml) see the old
 * content or the new, never half of it: a temp file beside the target (same file system), created with the final
 * mode, synced, renamed over the target.
 */
export async function writeFileAtomically(file: string, text: string, mode: number): Promise<void> {
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(temp, 'wx', mode);
  try {
    await fh.chmod(mode); // the umask may have narrowed the mode given to open
    await fh.writeFile(text);
    await fh.datasync();
    await fh.close();
    await rename(temp, target);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}
