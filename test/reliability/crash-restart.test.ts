import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../helpers/hub-front.js';
import { pushBigBlob, type BlobRef } from '../helpers/images.js';
import { startMirrorCli, type CliProcess } from '../helpers/cli-process.js';
import { Cleanup, freePort, makeTempDir, type TempDir } from '../helpers/tmp.js';
import { fetchAndClassify, Tally } from './outcomes.js';
import { checkContentFiles, tempFiles } from '../helpers/cache-disk.js';

/**
 * `kill -9` of the mirror process at random moments of cold downloads (while bytes stream, and around the
 * verify-sync-rename commit), then a restart on the same storage: no partial blob is ever visible under a
 * digest name, temp files are swept, and the next pull succeeds. Once as one process, once with two workers
 * (`mirror.workers`; the primary is killed, its workers see it gone and stop).
 */
const TRIALS = Number(process.env.MIRRORGATE_CRASH_TRIALS ?? 8);
const cleanup = new Cleanup();
const tally = new Tally();
let registry: DockerRegistry;
let hub: HubFront;

beforeAll(async () => {
  registry = cleanup.add(await startDockerRegistry());
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 60_000);

afterAll(async () => {
  console.log(`\nProcess crashes (kill -9), then restart:\n${tally.table()}\n`);
  await cleanup.run();
});

describe.each([1, 2])('mirror.workers %i', (workers) => {
  let storage: TempDir;
  beforeAll(async () => {
    storage = cleanup.add(await makeTempDir('mirrorgate-crash-'));
  });

  function startCli(port: number): Promise<CliProcess> {
    return startMirrorCli({ upstream: hub.url, storage: storage.path, port, cleanup, env: { MIRRORGATE_WORKERS: String(workers) } });
  }

  /** Every blob file holds exactly the bytes its name says. */
  function assertStorageConsistent(): void {
    expect(checkContentFiles(storage.path).wrong).toEqual([]);
  }

  describe('kill -9 during cold downloads', () => {
    it('leaves the cache consistent and the next pull succeeds', async () => {
      const blobs: BlobRef[] = [];
      for (let i = 0; i < TRIALS; i++) blobs.push(await pushBigBlob(registry.url, 'library/crash', 6 * 1024 * 1024 + i * 4096, `crash-${workers}-${i}`));
      for (let i = 0; i < TRIALS; i++) {
        const blob = blobs[i]!;
        const port = await freePort();
        let mirror = await startCli(port);
        // Slow the upstream a little so kills land before, during and right after the transfer and commit.
        hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'delay', ms: 20 } });
        const url = `http://127.0.0.1:${port}/v2/library/crash/blobs/${blob.digest}`;
        const download = fetchAndClassify(url, blob.digest, blob.size);
        await new Promise((r) => setTimeout(r, 20 + ((i * 37) % 140)));
        mirror.child.kill('SIGKILL');
        await mirror.exited;
        const during = await download;
        expect(during).not.toBe('corrupted');
        assertStorageConsistent();

        mirror = await startCli(port);
        expect(tempFiles(storage.path)).toEqual([]);
        const after = await fetchAndClassify(url, blob.digest, blob.size);
        tally.add(`kill -9 during a cold download, then restart (next pull), ${workers === 1 ? 'one process' : `${workers} workers`}`, after);
        expect(after).toBe('verified');
        assertStorageConsistent();
        mirror.child.kill('SIGTERM');
        await mirror.exited;
        hub.faults.length = 0;
      }
    }, 240_000);
  });

  describe('the mirror still answers after the crashes', () => {
    it('serves a cached blob with no upstream call after a clean restart', async () => {
      const port = await freePort();
      const mirror = await startCli(port);
      hub.reset();
      const res = await request(`http://127.0.0.1:${port}/v2/`);
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      mirror.child.kill('SIGTERM');
      await mirror.exited;
    });
  });
});
