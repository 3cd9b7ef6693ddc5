import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';

/**
 * Calls `onChange` (debounced) when any of `files` may have changed. Two sources: `fs.watch` on each
 * file's directory, which is quick and sees atomic renames and Kubernetes' `..data` symlink swaps; and
 * `fs.watchFile` polling every `intervalMs`, for file systems where events do not arrive (NFS, some
 * container mounts). Either may fire spuriously: callers compare contents before acting.
 * Returns a function that stops watching.
 */
export function watchFiles(files: readonly string[], onChange: () => void, opts: { intervalMs: number; logger: Logger; debounceMs?: number }): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      onChange();
    }, opts.debounceMs ?? 50);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(files.map((f) => path.dirname(path.resolve(f))))) {
    try {
      const w = watch(dir, { persistent: false }, fire);
      w.on('error', (err) => opts.logger.debug({ err, dir }, 'file watch failed; relying on polling'));
      watchers.push(w);
    } catch (err) {
      opts.logger.debug({ err, dir }, 'cannot watch directory; relying on polling');
    }
  }
  for (const f of files) watchFile(f, { interval: opts.intervalMs, persistent: false }, fire);
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
    for (const f of files) unwatchFile(f, fire);
  };
}
