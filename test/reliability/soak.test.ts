import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.js';
import { startHubFront, type FaultAction, type HubFront } from '../helpers/hub-front.js';
import { generateBytes, pushBlob, type BlobRef } from '../helpers/images.js';
import { startMirrorCli } from '../helpers/cli-process.js';
import { Cleanup, freePort, makeTempDir, type TempDir } from '../helpers/tmp.js';
import { fetchAndClassify, Tally, type Outcome } from './outcomes.js';
import { rng } from '../helpers/rng.js';
import { checkContentFiles } from '../helpers/cache-disk.js';

/**
 * A bounded soak: several clients pull a mix of warm and cold blobs for SOAK_SECONDS while the upstream
 * misbehaves at random. At the end every cached blob is re-verified, no client ever got corrupt bytes, and
 * the mirror's memory and open file handles are back near their baseline.
 */
const SOAK_SECONDS = Number(process.env.MIRRORGATE_SOAK_SECONDS ?? 45);
const CLIENTS = 8;
const cleanup = new Cleanup();
const tally = new Tally();
let registry: DockerRegistry;
let hub: HubFront;
let storage: TempDir;
let mirror: ChildProcess;
let port: number;

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}
/** Open file descriptors by what they are: files (a leak there means a blob or temp file left open) and sockets. */
function openFds(pid: number): { files: number; sockets: number } {
  let files = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    if (target.startsWith('socket:')) sockets++;
    else if (target.startsWith('/')) files++;
  }
  return { files, sockets };
}

beforeAll(async () => {
  registry = cleanup.add(await startDockerRegistry());
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  storage = cleanup.add(await makeTempDir('mirrorgate-soak-'));
  port = await freePort();
  mirror = (await startMirrorCli({ upstream: hub.url, storage: storage.path, port, cleanup, env: { MIRRORGATE_LOG_LEVEL: 'warn' } })).child;
}, 60_000);

afterAll(async () => {
  console.log(`\nSoak (${SOAK_SECONDS} s, ${CLIENTS} clients, random upstream faults):\n${tally.table()}\n`);
  await cleanup.run();
});

const FAULTS: FaultAction[] = [
  { type: 'cut', afterBytes: 5000 },
  { type: 'corrupt' },
  { type: 'status', status: 503 },
  { type: 'status', status: 429, headers: { 'retry-after': '1' } },
  { type: 'stall', ms: 300 },
  { type: 'refuse' },
];

describe('soak', () => {
  it('mixed warm and cold pulls with random upstream faults: nothing corrupted, resources back to baseline', async () => {
    const random = rng(20261122);
    const pool: BlobRef[] = [];
    for (let i = 0; i < 40; i++) pool.push(await pushBlob(registry.url, 'library/soak', generateBytes(`soak-${i}`, 20_000 + Math.floor(random() * 2_000_000))));
    const agent = new Agent({ connections: CLIENTS });
    const url = (b: BlobRef) => `http://127.0.0.1:${port}/v2/library/soak/blobs/${b.digest}`;

    // Warm-up, then the baseline.
    for (const b of pool.slice(0, 5)) await fetchAndClassify(url(b), b.digest, b.size, {}, agent);
    const baseline = { rss: rssKiB(mirror.pid!), fds: openFds(mirror.pid!) };

    let cold = 5;
    const until = Date.now() + SOAK_SECONDS * 1000;
    const client = async (): Promise<void> => {
      while (Date.now() < until) {
        if (random() < 0.3) hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: FAULTS[Math.floor(random() * FAULTS.length)]! });
        if (cold >= pool.length) pool.push(await pushBlob(registry.url, 'library/soak', generateBytes(`soak-${pool.length}`, 20_000 + Math.floor(random() * 1_000_000))));
        const b = random() < 0.5 ? pool[cold++]! : pool[Math.floor(random() * Math.min(cold, pool.length))]!;
        const outcome: Outcome = await fetchAndClassify(url(b), b.digest, b.size, {}, agent);
        tally.add('mixed warm/cold pulls with random faults', outcome);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    hub.faults.length = 0;

    expect(tally.total('corrupted')).toBe(0);
    expect(tally.total('crashed')).toBe(0);
    expect(tally.total('verified')).toBeGreaterThan(100);

    // Every blob in the cache is exactly what its name says.
    const { checked, wrong } = checkContentFiles(storage.path);
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10);
    expect(readdirSync(path.join(storage.path, 'tmp'))).toEqual([]);

    // Idle again: file handles and memory back near the baseline.
    await agent.close();
    let fds = openFds(mirror.pid!);
    // Idle keep-alive connections to the upstream close after 10 s: wait for them too.
    for (let i = 0; i < 200 && (fds.files > baseline.fds.files || fds.sockets > baseline.fds.sockets + 2); i++) {
      await new Promise((r) => setTimeout(r, 100));
      fds = openFds(mirror.pid!);
    }
    const rss = rssKiB(mirror.pid!);
    console.log(`mirror baseline: rss ${baseline.rss} KiB, ${baseline.fds.files} files, ${baseline.fds.sockets} sockets; after the soak: rss ${rss} KiB, ${fds.files} files, ${fds.sockets} sockets`);
    expect(fds.files).toBeLessThanOrEqual(baseline.fds.files);
    expect(fds.sockets).toBeLessThanOrEqual(baseline.fds.sockets + 2);
    expect(rss).toBeLessThan(baseline.rss + 80 * 1024);
  }, (SOAK_SECONDS + 120) * 1000);
});
