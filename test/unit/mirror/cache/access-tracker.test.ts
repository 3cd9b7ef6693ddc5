import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { AccessTracker } from '../../../../src/mirror/cache/access-tracker.js';
import { FsMetadataStore } from '../../../../src/mirror/store/fs/fs-metadata-store.js';
import { StorageLayout } from '../../../../src/mirror/store/fs/layout.js';
import { useCleanup, makeTempDir } from '../../../helpers/tmp.js';

const cleanup = useCleanup();
const repo = { upstream: 'docker.io', path: 'library/nginx' };

describe('AccessTracker', () => {
  it('records reads in memory, writes the index in one batch, and reads it back after a restart', async () => {
    const dir = cleanup.add(await makeTempDir());
    const layout = new StorageLayout(dir.path);
    const clock = new ManualClock(1_000);
    const tracker = new AccessTracker(new FsMetadataStore(layout, clock), { clock, logger: silentLogger() });
    await tracker.load();
    for (let i = 0; i < 1000; i++) tracker.blobRead(`sha256:${String(i % 10).repeat(64)}`);
    clock.advance(5);
    tracker.tagRead(repo, '1.27');
    await expect(readFile(layout.accessIndexPath)).rejects.toThrow(); // nothing written per read
    await tracker.flush();
    const doc = JSON.parse(await readFile(layout.accessIndexPath, 'utf8')) as { entries: Record<string, number> };
    expect(Object.keys(doc.entries)).toHaveLength(11);
    expect(doc.entries['tag:docker.io/library/nginx:1.27']).toBe(1_005);

    // A new process: a new metadata store reading what the first one saved.
    const again = new AccessTracker(new FsMetadataStore(layout, clock), { clock, logger: silentLogger() });
    await again.load();
    expect(again.lastAccess(`blob:sha256:${'3'.repeat(64)}`)).toBe(1_000);
    again.forget([`blob:sha256:${'3'.repeat(64)}`]);
    await again.stop();
    const after = JSON.parse(await readFile(layout.accessIndexPath, 'utf8')) as { entries: Record<string, number> };
    expect(Object.keys(after.entries)).toHaveLength(10);
  });

  it('a watch sees the keys touched while it is open, and stored content counts as a use', async () => {
    const dir = cleanup.add(await makeTempDir());
    const clock = new ManualClock();
    const tracker = new AccessTracker(new FsMetadataStore(new StorageLayout(dir.path), clock), { clock, logger: silentLogger() });
    const sizes: number[] = [];
    tracker.onStored((_k, size) => sizes.push(size));
    tracker.manifestRead('sha256:' + 'a'.repeat(64));
    const watch = tracker.watch();
    tracker.stored('blob', 'sha256:' + 'b'.repeat(64), 42);
    watch.end();
    tracker.blobRead('sha256:' + 'c'.repeat(64));
    expect([...watch.keys]).toEqual(['blob:sha256:' + 'b'.repeat(64)]);
    expect(sizes).toEqual([42]);
  });
});
