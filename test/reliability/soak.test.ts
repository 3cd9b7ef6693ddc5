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
 * the mirror's memory and open file handles are back near their baseline. Once as one process, once with two
 * workers (`mirror.workers`), where the resource check covers the primary and each worker.
 */
const SOAK_SECONDS = Number(process.env.MIRRORGATE_SOAK_SECONDS ?? 45);
const CLIENTS = 8;
const WORKERS = [1, 2] as const;
const cleanup = new Cleanup();
const tally = new Tally();
let registry: DockerRegistry;
let hub: HubFront;

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}
/** The mirror's processes: the command itself and, with workers, its children (the workers). */
function mirrorPids(mirror: ChildProcess): number[] {
  const pid = mirror.pid!;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return [pid, ...(children ? children.split(/\s+/).map(Number) : [])];
}
interface Resources {
  rss: number;
  fds: { files: number; sockets: number };
}
function resources(mirror: ChildProcess): Map<number, Resources> {
  return new Map(mirrorPids(mirror).map((pid) => [pid, { rss: rssKiB(pid), fds: openFds(pid) }]));
}
const describeResources = (r: Map<number, Resources>): string =>
  [...r].map(([pid, x]) => `pid ${pid}: rss ${x.rss} KiB, ${x.fds.files} files, ${x.fds.sockets} sockets`).join('; ');

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
}, 60_000);

afterAll(async () => {
  console.log(`\nSoak (${SOAK_SECONDS} s per run, ${CLIENTS} clients, random upstream faults):\n${tally.table()}\n`);
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

describe.each(WORKERS)('soak, mirror.workers %i', (workers) => {
  const mode = workers === 1 ? 'one process' : `${workers} workers`;
  let storage: TempDir;
  let mirror: ChildProcess;
  let port: number;

  beforeAll(async () => {
    storage = cleanup.add(await makeTempDir('mirrorgate-soak-'));
    port = await freePort();
    const cli = await startMirrorCli({ upstream: hub.url, storage: storage.path, port, cleanup, env: { MIRRORGATE_LOG_LEVEL: 'info', MIRRORGATE_WORKERS: String(workers) } });
    mirror = cli.child;
    if (workers > 1) {
      const until = Date.now() + 30_000;
      while ((cli.output().match(/worker listening/g) ?? []).length < workers) {
        if (Date.now() > until) throw new Error(`the workers did not all listen:\n${cli.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, 60_000);

  it('mixed warm and cold pulls with random upstream faults: nothing corrupted, resources back to baseline', async () => {
    const random = rng(20261122 + workers);
    const repo = `library/soak-${workers}`;
    const pool: BlobRef[] = [];
    for (let i = 0; i < 40; i++) pool.push(await pushBlob(registry.url, repo, generateBytes(`soak-${workers}-${i}`, 20_000 + Math.floor(random() * 2_000_000))));
    const agent = new Agent({ connections: CLIENTS });
    const url = (b: BlobRef) => `http://127.0.0.1:${port}/v2/${repo}/blobs/${b.digest}`;
    const row = `mixed warm/cold pulls with random faults, ${mode}`;

    // Warm-up on every connection (so each worker has served), then the baseline.
    await Promise.all(pool.slice(0, CLIENTS).map((b) => fetchAndClassify(url(b), b.digest, b.size, {}, agent)));
    const baseline = resources(mirror);
    expect(baseline.size).toBe(workers === 1 ? 1 : workers + 1);

    let cold = CLIENTS;
    const until = Date.now() + SOAK_SECONDS * 1000;
    const client = async (): Promise<void> => {
      while (Date.now() < until) {
        if (random() < 0.3) hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: FAULTS[Math.floor(random() * FAULTS.length)]! });
        if (cold >= pool.length) pool.push(await pushBlob(registry.url, repo, generateBytes(`soak-${workers}-${pool.length}`, 20_000 + Math.floor(random() * 1_000_000))));
        const b = random() < 0.5 ? pool[cold++]! : pool[Math.floor(random() * Math.min(cold, pool.length))]!;
        const outcome: Outcome = await fetchAndClassify(url(b), b.digest, b.size, {}, agent);
        tally.add(row, outcome);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    hub.faults.length = 0;

    const outcomes = tally.rows.get(row)!;
    expect(outcomes.corrupted).toBe(0);
    expect(outcomes.crashed).toBe(0);
    expect(outcomes.verified).toBeGreaterThan(100);

    // Every blob in the cache is exactly what its name says.
    const { checked, wrong } = checkContentFiles(storage.path);
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10);
    expect(readdirSync(path.join(storage.path, 'tmp'))).toEqual([]);

    // Idle again: file handles and memory back near the baseline, in every process.
    await agent.close();
    const settled = (now: Map<number, Resources>): boolean =>
      [...baseline].every(([pid, base]) => {
        const fds = now.get(pid)?.fds;
        return fds !== undefined && fds.files <= base.fds.files && fds.sockets <= base.fds.sockets + 2;
      });
    let now = resources(mirror);
    // Idle keep-alive connections to the upstream close after 10 s: wait for them too.
    for (let i = 0; i < 200 && !settled(now); i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = resources(mirror);
    }
    console.log(`mirror (${mode}) baseline: ${describeResources(baseline)}; after the soak: ${describeResources(now)}`);
    // The same processes: none died and was replaced.
    expect([...now.keys()].sort()).toEqual([...baseline.keys()].sort());
    for (const [pid, base] of baseline) {
      const after = now.get(pid)!;
      expect(after.fds.files).toBeLessThanOrEqual(base.fds.files);
      expect(after.fds.sockets).toBeLessThanOrEqual(base.fds.sockets + 2);
      expect(after.rss).toBeLessThan(base.rss + 80 * 1024);
    }
  }, (SOAK_SECONDS + 120) * 1000);
});
