import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/common/logger.js';
import { MirrorMetrics } from '../../../../src/mirror/metrics.js';
import { Prefetcher, type PrefetchTarget } from '../../../../src/mirror/prefetch/prefetcher.js';
import type { FetchedImage } from '../../../../src/mirror/warm/fetch-image.js';

const image = (path: string, reference = '1'): PrefetchTarget => ({ repo: { upstream: 'docker.io', path }, reference });
const FETCHED: FetchedImage = { digest: 'sha256:x', mediaType: 'application/vnd.oci.image.manifest.v1+json', platforms: [], manifests: 1, blobs: 2, size: 10 };

/** A fetch each call of which waits until the test settles it. */
function controlledFetch() {
  const calls: Array<{ target: PrefetchTarget; signal: AbortSignal; resolve(): void; reject(err: Error): void }> = [];
  const fetch = (target: PrefetchTarget, signal: AbortSignal): Promise<FetchedImage> =>
    new Promise((resolve, reject) => calls.push({ target, signal, resolve: () => resolve(FETCHED), reject }));
  return { calls, fetch };
}

async function states(metrics: MirrorMetrics): Promise<Record<string, number>> {
  const m = await metrics.prefetchImages.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.state), v.value]));
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Prefetcher', () => {
  it('fetches in order, a few at a time; the same image asked for again while queued or running is merged', async () => {
    const { calls, fetch } = controlledFetch();
    const metrics = new MirrorMetrics();
    const p = new Prefetcher({ queue: 10, concurrency: 2 }, { fetch, logger: silentLogger(), metrics });
    expect(['a', 'b', 'c', 'a', 'c'].map((n) => p.submit(image(n)))).toEqual(['queued', 'queued', 'queued', 'merged', 'merged']);
    expect(p.submit(image('a', '2'))).toBe('queued'); // another tag is another image
    expect(calls.map((c) => c.target.repo.path)).toEqual(['a', 'b']);
    expect(p.pending).toBe(4);
    expect((await metrics.prefetchPending.get()).values[0]!.value).toBe(4);
    calls[0]!.resolve();
    await tick();
    expect(calls.map((c) => `${c.target.repo.path}:${c.target.reference}`)).toEqual(['a:1', 'b:1', 'c:1']);
    // Done: the next request for it fetches again (a cached image then costs no download).
    expect(p.submit(image('a'))).toBe('queued');
    calls[1]!.reject(new Error('upstream down'));
    for (const c of calls.slice(2)) c.resolve();
    await tick();
    for (const c of calls.slice(3)) c.resolve();
    await tick();
    expect(p.pending).toBe(0);
    expect(await states(metrics)).toEqual({ queued: 5, merged: 2, fetched: 4, failed: 1 });
  });

  it('drops what does not fit the queue, never waits for room', async () => {
    const { calls, fetch } = controlledFetch();
    const metrics = new MirrorMetrics();
    const p = new Prefetcher({ queue: 1, concurrency: 1 }, { fetch, logger: silentLogger(), metrics });
    expect(['a', 'b', 'c', 'b'].map((n) => p.submit(image(n)))).toEqual(['queued', 'queued', 'dropped', 'merged']);
    const none = new Prefetcher({ queue: 0, concurrency: 1 }, { fetch, logger: silentLogger(), metrics: new MirrorMetrics() });
    expect(['x', 'y'].map((n) => none.submit(image(n)))).toEqual(['queued', 'dropped']);
    expect(calls.map((c) => c.target.repo.path)).toEqual(['a', 'x']);
    expect((await states(metrics)).dropped).toBe(1);
  });

  it('stop drops what waits, aborts the running fetch’s signal, waits for it, and takes nothing more', async () => {
    const { calls, fetch } = controlledFetch();
    const metrics = new MirrorMetrics();
    const p = new Prefetcher({ queue: 10, concurrency: 1 }, { fetch, logger: silentLogger(), metrics });
    p.submit(image('a'));
    p.submit(image('b'));
    let stopped = false;
    const stopping = p.stop().then(() => (stopped = true));
    expect(calls[0]!.signal.aborted).toBe(true);
    await tick();
    expect(stopped).toBe(false);
    calls[0]!.reject(new Error('aborted'));
    await stopping;
    expect(calls.length).toBe(1);
    expect(p.submit(image('c'))).toBe('dropped');
    expect(p.pending).toBe(0);
    // A fetch cut short by the stop is not a failure of the image.
    expect((await states(metrics)).failed).toBeUndefined();
  });
});
