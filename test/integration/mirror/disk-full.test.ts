import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushBigBlob, pushImage, sha256, type BlobRef, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { fetchAll, waitFor } from '../../helpers/http.js';
import { Cleanup, makeTempDir, type TempDir } from '../../helpers/tmp.js';
import { blobFile as blobFileIn } from '../../helpers/cache-disk.js';

/**
 * A real full disk: the cache lives on a 4 MiB tmpfs. Mounting needs root (CI and developer machines run
 * as root); without it this file fails with mount's own error, never silently skips.
 */
const cleanup = new Cleanup();
const clock = new ManualClock(Date.now());
let hub: HubFront;
let mirror: TestMirror;
let mountDir: TempDir;
let filler: BlobRef;
let big: BlobRef;
let image: PushedImage;

function blobFile(digest: string): string {
  return blobFileIn(mountDir.path, digest);
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  filler = await pushBigBlob(registry.url, 'library/full', 3 * 1024 * 1024, 'filler');
  big = await pushBigBlob(registry.url, 'library/full', 3 * 1024 * 1024, 'too-big');
  image = await pushImage(registry.url, 'library/full', 'v1', { layers: [1000], format: 'oci', seed: 'full-manifest' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 60_000);

afterAll(() => cleanup.run());


/** Once as one process, once as one of `mirror.workers` (shared storage), each on a fresh 4 MiB tmpfs. */
describe.each([false, true])('a worker: %s', (worker) => {
  beforeAll(async () => {
    mountDir = await makeTempDir('mirrorgate-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountDir.path]);
    const dir = mountDir;
    cleanup.add(async () => {
      execFileSync('umount', [dir.path]);
      await dir.cleanup();
    });
    mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, storage: mountDir, clock, deps: { worker } }));
  });
  afterAll(() => mirror.stop());

  describe('a full disk', () => {
    it('a download that fills the disk fails cleanly and leaves no partial blob; later requests stream uncached and verified; caching resumes when space returns', async () => {
      const first = await fetchAll(`${mirror.url}/v2/library/full/blobs/${filler.digest}`);
      expect(sha256(first.body)).toBe(filler.digest);
      await waitFor(() => existsSync(blobFile(filler.digest)));

      // 3 MiB more does not fit in what is left of 4 MiB.
      const overflow = await fetchAll(`${mirror.url}/v2/library/full/blobs/${big.digest}`);
      expect(overflow.broken || overflow.status !== 200).toBe(true);
      expect(existsSync(blobFile(big.digest))).toBe(false);
      expect(readdirSync(path.join(mountDir.path, 'tmp'))).toEqual([]);

      // While the disk is full, the same blob comes straight from the upstream, complete and verified.
      const direct = await fetchAll(`${mirror.url}/v2/library/full/blobs/${big.digest}`);
      expect(direct.status).toBe(200);
      expect(direct.broken).toBe(false);
      expect(sha256(direct.body)).toBe(big.digest);
      const range = await fetchAll(`${mirror.url}/v2/library/full/blobs/${big.digest}`, { range: 'bytes=10-19' });
      expect(range.status).toBe(206);
      expect(range.body.equals(direct.body.subarray(10, 20))).toBe(true);
      expect(existsSync(blobFile(big.digest))).toBe(false);
      // Corrupt bytes on that path: cut short, and counted as a verification failure.
      hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'corrupt' } });
      expect((await fetchAll(`${mirror.url}/v2/library/full/blobs/${big.digest}`)).broken).toBe(true);
      expect(await mirror.server.metrics.registry.getSingleMetricAsString('mirrorgate_upstream_verification_failures_total')).toContain(
        'mirrorgate_upstream_verification_failures_total{upstream="docker.io",kind="blob"} 1',
      );

      // Manifests are small: still served (verified) when they cannot be stored.
      const m = await fetchAll(`${mirror.url}/v2/library/full/manifests/v1`, { accept: MediaTypes.ociManifest });
      expect(m.status).toBe(200);
      expect(sha256(m.body)).toBe(image.digest);

      // Space returns: the mirror caches again once its back-off has passed.
      rmSync(blobFile(filler.digest));
      clock.advance(60_000);
      const cached = await fetchAll(`${mirror.url}/v2/library/full/blobs/${big.digest}`);
      expect(sha256(cached.body)).toBe(big.digest);
      await waitFor(() => existsSync(blobFile(big.digest)));
    });
  });
});

describe('unusable storage at start-up', () => {
  it('refuses a read-only storage directory with a clear error', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-ro-'));
    mkdirSync(path.join(dir.path, 'cache'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', path.join(dir.path, 'cache')]);
    try {
      await expect(startMirror({ upstreams: { 'docker.io': hub.url }, config: { mirror: { storage: { path: path.join(dir.path, 'cache') } } } })).rejects.toThrow(/storage directory .* is not usable/);
    } finally {
      execFileSync('umount', [path.join(dir.path, 'cache')]);
    }
  });
});

