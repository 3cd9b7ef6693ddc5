import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.js';
import { startHubFront, type FaultAction, type HubFront, type RequestMatch } from '../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushBlob, pushImage, type BlobRef } from '../helpers/images.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { Cleanup } from '../helpers/tmp.js';
import { blobFile } from '../helpers/cache-disk.js';
import { fetchAndClassify, Tally, type Outcome } from './outcomes.js';

/**
 * The upstream and client fault matrix: each fault is injected into many cold fetches (a fresh blob each
 * time) and the client's outcome is tallied. Whatever happens, nothing wrong is ever stored or presented
 * as complete, the mirror never goes down, and the next request after the fault gets the verified blob.
 * Twice: as one process, and as one of the workers of `mirror.workers` (shared storage: file leases, metadata
 * read from disk each time, the storage claimed and swept by a primary).
 */
const TRIALS = Number(process.env.MIRRORGATE_FAULT_TRIALS ?? 20);
const cleanup = new Cleanup();
const results = new Tally();
/** ` (worker)` while the matrix runs on a worker's storage, so the table keeps the two runs apart. */
let mode = '';
const tally = { add: (fault: string, outcome: Outcome): void => results.add(`${fault}${mode}`, outcome), total: (o: Outcome): number => results.total(o), row: (fault: string) => results.rows.get(`${fault}${mode}`) };
let registry: DockerRegistry;
let hub: HubFront;
let mirror: TestMirror;
let seq = 0;

beforeAll(async () => {
  registry = cleanup.add(await startDockerRegistry());
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 60_000);

afterAll(async () => {
  console.log(`\nUpstream and client faults (${TRIALS} trials each unless stated):\n${results.table()}\n`);
  await cleanup.run();
});

async function freshBlob(): Promise<BlobRef> {
  seq++;
  const size = 100_000 + ((seq * 7919) % 900_000);
  return pushBlob(registry.url, 'library/trials', generateBytes(`trial-${seq}`, size));
}

const blobUrl = (digest: string): string => `${mirror.url}/v2/library/trials/blobs/${digest}`;

/** The cache holds either nothing or exactly the right bytes for a digest, and no temp file lingers. */
async function assertCacheSound(digest: string): Promise<void> {
  const file = blobFile(mirror.storage.path, digest);
  if (existsSync(file)) expect(`sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`).toBe(digest);
  const tmp = path.join(mirror.storage.path, 'tmp');
  for (let i = 0; i < 100 && existsSync(tmp) && readdirSync(tmp).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
}

/** After the fault: the in-flight entry was released and the next request gets the verified blob. */
async function assertRecovers(blob: BlobRef): Promise<void> {
  hub.faults.length = 0;
  expect(await fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size)).toBe('verified');
}

async function blobTrials(name: string, match: RequestMatch, action: (blob: BlobRef, i: number) => FaultAction, opts: { times?: number; trials?: number } = {}): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < (opts.trials ?? TRIALS); i++) {
    const blob = await freshBlob();
    hub.faults.push({ match, times: opts.times ?? 1, action: action(blob, i) });
    const outcome = await fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size);
    tally.add(name, outcome);
    outcomes.push(outcome);
    await assertCacheSound(blob.digest);
    await assertRecovers(blob);
  }
  return outcomes;
}

const blobGet: RequestMatch = { kind: 'blob', method: 'GET' };

describe.each([false, true])('a worker: %s', (worker) => {
  beforeAll(async () => {
    mode = worker ? ' (worker)' : '';
    mirror = await startMirror({ upstreams: { 'docker.io': { url: hub.url, timeouts: { body: '1s', headers: '5s' } } }, deps: { worker } });
  });
  afterAll(() => mirror.stop());

  describe('upstream faults during cold blob fetches', () => {
    it('connection reset mid-blob at a random offset: resumed with Range, served verified', async () => {
      const outcomes = await blobTrials('reset mid-blob, random offset', blobGet, (b, i) => ({ type: 'cut', afterBytes: 1 + ((i * 104_729) % (b.size - 1)) }));
      expect(outcomes.every((o) => o === 'verified')).toBe(true);
    });

    it('reset on every attempt: never served as complete', async () => {
      const outcomes = await blobTrials('reset on every attempt', blobGet, () => ({ type: 'cut', afterBytes: 1000 }), { times: 4 });
      expect(outcomes.every((o) => o === 'aborted-short' || o === 'spec-error')).toBe(true);
    });

    it('wrong bytes for the digest: never served as complete', async () => {
      const outcomes = await blobTrials('wrong bytes, same length', blobGet, () => ({ type: 'corrupt' }));
      // Cut short when bytes were already flowing, a spec error when verification failed before the first byte.
      expect(outcomes.every((o) => o === 'aborted-short' || o === 'spec-error')).toBe(true);
    });

    it('wrong length (short Content-Length): never served as complete', async () => {
      const outcomes = await blobTrials('wrong length', blobGet, (_b, i) => ({ type: 'truncate-length', dropBytes: 1 + i * 37 }));
      expect(outcomes.every((o) => o === 'aborted-short' || o === 'spec-error')).toBe(true);
    });

    it('a stalled body (longer than the timeout): resumed, served verified', async () => {
      const outcomes = await blobTrials('stalled body', blobGet, () => ({ type: 'stall', ms: 1500 }), { trials: Math.min(TRIALS, 8) });
      expect(outcomes.every((o) => o === 'verified')).toBe(true);
    }, 60_000);

    for (const status of [500, 502, 503]) {
      it(`${status} once: retried, served verified; ${status} every time: a spec error`, async () => {
        const once = await blobTrials(`${status} once`, blobGet, () => ({ type: 'status', status }));
        expect(once.every((o) => o === 'verified')).toBe(true);
        const always = await blobTrials(`${status} every time`, blobGet, () => ({ type: 'status', status }), { times: Number.POSITIVE_INFINITY, trials: Math.min(TRIALS, 10) });
        expect(always.every((o) => o === 'spec-error')).toBe(true);
      });
    }

    it('429 with Retry-After: TOOMANYREQUESTS with Retry-After passed through', async () => {
      const blob = await freshBlob();
      hub.faults.push({ match: blobGet, action: { type: 'status', status: 429, headers: { 'retry-after': '7' } } });
      const res = await request(blobUrl(blob.digest));
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      await res.body.dump();
      const outcomes = await blobTrials('429 with Retry-After', blobGet, () => ({ type: 'status', status: 429, headers: { 'retry-after': '7' } }));
      expect(outcomes.every((o) => o === 'spec-error')).toBe(true);
    });

    it('connection dropped before any answer: retried once; dropped every time: a spec error', async () => {
      const once = await blobTrials('connection dropped once', blobGet, () => ({ type: 'refuse' }));
      expect(once.every((o) => o === 'verified')).toBe(true);
      const always = await blobTrials('connection dropped every time', blobGet, () => ({ type: 'refuse' }), { times: Number.POSITIVE_INFINITY, trials: Math.min(TRIALS, 10) });
      expect(always.every((o) => o === 'spec-error')).toBe(true);
    });

    it('connection refused (the upstream is down): a spec error at once', async () => {
      const blob = await freshBlob();
      await hub.down();
      try {
        for (let i = 0; i < TRIALS; i++) tally.add('upstream down (connection refused)', await fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size));
      } finally {
        await hub.up();
      }
      expect(tally.row('upstream down (connection refused)')!['spec-error']).toBe(TRIALS);
      await assertRecovers(blob);
    });

    it('token endpoint down: a spec error', async () => {
      const outcomes: Outcome[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const blob = await freshBlob();
        hub.revokeTokens();
        hub.faults.push({ match: { kind: 'token' }, times: Number.POSITIVE_INFINITY, action: { type: 'status', status: 503 } });
        const outcome = await fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size);
        tally.add('token endpoint down', outcome);
        outcomes.push(outcome);
        await assertCacheSound(blob.digest);
        await assertRecovers(blob);
      }
      expect(outcomes.every((o) => o === 'spec-error')).toBe(true);
    });

    it("a manifest whose bytes do not match the tag's Docker-Content-Digest: refused, not stored", async () => {
      const outcomes: Outcome[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const image = await pushImage(registry.url, 'library/trials', `m${i}`, { layers: [100], format: 'oci', seed: `manifest-${i}` });
        hub.faults.push({ match: { kind: 'manifest', method: 'GET' }, action: { type: 'corrupt' } });
        const url = `${mirror.url}/v2/library/trials/manifests/m${i}`;
        const outcome = await fetchAndClassify(url, image.digest, image.manifestBytes.length, { accept: MediaTypes.ociManifest });
        tally.add('manifest digest mismatch', outcome);
        outcomes.push(outcome);
        hub.faults.length = 0;
        expect(await fetchAndClassify(url, image.digest, image.manifestBytes.length, { accept: MediaTypes.ociManifest })).toBe('verified');
      }
      expect(outcomes.every((o) => o === 'spec-error')).toBe(true);
    });
  });

  describe('client faults', () => {
    it('a client that disconnects mid-download: the download completes and is cached once', async () => {
      for (let i = 0; i < TRIALS; i++) {
        const blob = await freshBlob();
        hub.reset();
        hub.faults.push({ match: blobGet, action: { type: 'delay', ms: 50 } });
        const ac = new AbortController();
        const res = await request(blobUrl(blob.digest), { signal: ac.signal });
        res.body.once('data', () => ac.abort());
        await res.body.dump({ limit: Number.MAX_SAFE_INTEGER }).catch(() => undefined);
        const outcome = await fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size);
        tally.add('client disconnects mid-download (next client)', outcome);
        expect(outcome).toBe('verified');
        expect(hub.requests.filter((r) => r.kind === 'blob' && r.method === 'GET' && r.status === 200).length).toBe(1);
      }
    });

    it('many clients share one fetch, half of them leave: the rest get the verified blob, fetched once', async () => {
      for (let i = 0; i < Math.min(TRIALS, 10); i++) {
        const blob = await freshBlob();
        hub.reset();
        hub.faults.push({ match: blobGet, action: { type: 'stall', ms: 150 } });
        const leavers = Array.from({ length: 4 }, async () => {
          const ac = new AbortController();
          const res = await request(blobUrl(blob.digest), { signal: ac.signal });
          setTimeout(() => ac.abort(), 10);
          await res.body.dump({ limit: Number.MAX_SAFE_INTEGER }).catch(() => undefined);
        });
        const stayers = Array.from({ length: 4 }, () => fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size));
        await Promise.all(leavers);
        for (const o of await Promise.all(stayers)) {
          tally.add('8 clients share a fetch, 4 leave (the 4 who stay)', o);
          expect(o).toBe('verified');
        }
        expect(hub.requests.filter((r) => r.kind === 'blob' && r.method === 'GET' && r.status === 200).length).toBe(1);
        await assertCacheSound(blob.digest);
      }
    });

    it('a slow reader does not hold back a fast one sharing the fetch', async () => {
      for (let i = 0; i < Math.min(TRIALS, 5); i++) {
        const blob = await freshBlob();
        const slow = (async (): Promise<Outcome> => {
          const res = await request(blobUrl(blob.digest), { highWaterMark: 1024 } as Parameters<typeof request>[1]);
          const hash = createHash('sha256');
          for await (const c of res.body) {
            hash.update(c as Buffer);
            await new Promise((r) => setTimeout(r, 2));
          }
          return `sha256:${hash.digest('hex')}` === blob.digest ? 'verified' : 'corrupted';
        })();
        const fast = fetchAndClassify(blobUrl(blob.digest), blob.digest, blob.size);
        const [s, f] = await Promise.all([slow, fast]);
        tally.add('slow and fast reader share a fetch', s);
        tally.add('slow and fast reader share a fetch', f);
        expect([s, f]).toEqual(['verified', 'verified']);
      }
    });

    it('never corrupted, never crashed', () => {
      expect(tally.total('corrupted')).toBe(0);
      expect(tally.total('crashed')).toBe(0);
    });
  });
});
