import type { Clock } from '../../common/clock.js';
import type { MirrorConfig } from '../../config/schema.js';
import { FsStorage } from './fs/fs-storage.js';
import type { Storage } from './storage.js';

/** The storage the configuration names. The filesystem is the embedded default (and, for now, the only one). */
export function createStorage(config: Pick<MirrorConfig, 'storage'>, clock: Clock): Storage {
  return new FsStorage(config.storage.path, clock);
}
