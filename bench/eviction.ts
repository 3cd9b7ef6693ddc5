/**
 * Cost of one cache pass over a large cache: builds a storage directory of 10,000 small synthetic blobs
 * (2,000 images of 5 blobs, with shared base layers) across 100 repositories, then times the scan and the plan
 * separately, a dry run, and a real pass with the cap at half the cache (evicting down to 40% of it), with the memory each one takes.
 *
 *   node --import tsx bench/eviction.ts [--blobs 10000] [--keep]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../src/common/clock.js';
import { silentLogger } from '../src/common/logger.js';
import { AccessTracker } from '../src/mirror/cache/access-tracker.js';
import { Collector } from '../src/mirror/cache/collector.js';
import { scanInventory } from '../src/mirror/cache/inventory.js';
import { planPass } from '../src/mirror/cache/plan.js';
import { FsStorage } from '../src/mirror/store/fs/fs-storage.js';
import type { StorageLayout } from '../src/mirror/store/fs/layout.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const BLOBS = arg('blobs', 10_000);
const PER_IMAGE = 5;
const SHARED_BASES = 20;
const REPOS = 100;
const BLOB_SIZE = 1024;

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function put(file: string, bytes: Buffer | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

async function build(layout: StorageLayout, tracker: AccessTracker, clock: ManualClock): Promise<{ images: number; bytes: number }> {
  const bases: { digest: string; size: number }[] = [];
  let bytes = 0;
  let blobs = 0;
  const blob = async (): Promise<{ digest: string; size: number }> => {
    const b = randomBytes(BLOB_SIZE);
    const digest = sha(b);
    await put(layout.blobPath(digest), b);
    bytes += b.length;
    blobs++;
    return { digest, size: b.length };
  };
  for (let i = 0; i < SHARED_BASES; i++) bases.push(await blob());
  let images = 0;
  const pending: Promise<void>[] = [];
  while (blobs + PER_IMAGE - 1 <= BLOBS) {
    const layers = [bases[images % SHARED_BASES]!];
    for (let j = 0; j < PER_IMAGE - 1; j++) layers.push(await blob());
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...layers[1]! }, layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })) }));
    const digest = sha(manifest);
    const repo = { upstream: 'docker.io', path: `bench/repo${images % REPOS}` };
    const tag = `t${images}`;
    pending.push(put(layout.manifestPath(digest), manifest));
    pending.push(put(layout.manifestLinkPath(repo, digest), ''));
    pending.push(put(layout.tagPath(repo, tag), JSON.stringify({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.length, checkedAt: clock.now() })));
    bytes += manifest.length;
    tracker.tagRead(repo, tag);
    tracker.manifestRead(digest);
    clock.advance(1000);
    images++;
    if (pending.length > 300) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await tracker.flush();
  return { images, bytes };
}

function mem(): { heapMiB: number; rssMiB: number } {
  const m = process.memoryUsage();
  return { heapMiB: +(m.heapUsed / 2 ** 20).toFixed(1), rssMiB: +(m.rss / 2 ** 20).toFixed(1) };
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'mirrorgate-bench-eviction-'));
  const clock = new ManualClock();
  const storage = new FsStorage(root, clock);
  // Built straight on the filesystem layout (a real pass would take far longer to fill it through writers).
  const layout = storage.layout;
  const logger = silentLogger();
  try {
    const t0 = performance.now();
    const built = await build(layout, new AccessTracker(storage.metadata, { clock, logger }), clock);
    const buildMs = performance.now() - t0;

    const run = async (maxSize: number | undefined, dryRun: boolean) => {
      // A fresh tracker, as after a restart: the index is read from disk.
      const access = new AccessTracker(storage.metadata, { clock, logger });
      await access.load();
      const collector = new Collector(
        { maxSize, highWater: 0.9, lowWater: 0.8, unreferencedGrace: 600_000, staleTempAge: 3_600_000, policies: [] },
        { storage, holder: 'bench', clock, logger, access },
      );
      globalThis.gc?.();
      const before = mem();
      let peakHeap = before.heapMiB;
      const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, mem().heapMiB)), 5);
      const start = performance.now();
      const r = await collector.run({ dryRun });
      const ms = performance.now() - start;
      clearInterval(sampler);
      peakHeap = Math.max(peakHeap, mem().heapMiB);
      await access.flush();
      return { ms: Math.round(ms), heapBeforeMiB: before.heapMiB, peakHeapMiB: +peakHeap.toFixed(1), rssMiB: mem().rssMiB, evicted: r.plan.evict.length, contentDeleted: r.applied ? r.applied.deleted.blob + r.applied.deleted.manifest : r.plan.content.length, sizeBefore: r.plan.sizeBefore, sizeAfter: r.sizeAfter };
    };
    // The two halves of a pass on their own: the walk of the directory, and the decision in memory.
    const access = new AccessTracker(storage.metadata, { clock, logger });
    await access.load();
    let t = performance.now();
    const inventory = await scanInventory(storage);
    const scanMs = Math.round(performance.now() - t);
    t = performance.now();
    const plan = planPass({ inventory, now: clock.now(), lastAccess: (k) => access.lastAccess(k), policies: [], maxSize: Math.floor(built.bytes / 2), highWater: 0.9, lowWater: 0.8, unreferencedGrace: 600_000 });
    const planMs = Math.round(performance.now() - t);
    const split = { scanMs, planMs, plannedEvictions: plan.evict.length };
    const dry = await run(undefined, true);
    const dryCapped = await run(Math.floor(built.bytes / 2), true);
    const evict = await run(Math.floor(built.bytes / 2), false);
    const after = await run(Math.floor(built.bytes / 2), true);
    const result = {
      blobs: BLOBS,
      images: built.images,
      repositories: REPOS,
      contentBytes: built.bytes,
      buildMs: Math.round(buildMs),
      split,
      scanAndPlanNoEviction: dry,
      dryRunEvictingHalf: dryCapped,
      passEvictingHalf: evict,
      nextPassNothingToDo: after,
      node: process.version,
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    if (!process.argv.includes('--keep')) await rm(root, { recursive: true, force: true });
    else console.error(`kept ${root}`);
  }
}

await main();
