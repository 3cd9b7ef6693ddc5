import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { useCleanup, makeTempDir } from '../helpers/tmp.js';

/**
 * Keeps the benchmark suite working: the runner in smoke mode (`--quick`: one run, tiny sizes) on two cheap
 * scenarios, the mirror run from src under tsx. It checks that numbers come out, not how good they are.
 */

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const cleanup = useCleanup();

interface Results {
  results: { id: string; skipped?: string; metrics: Record<string, number>; checks: unknown[] }[];
}

/** The bench needs nginx and curl (scripts/setup.sh installs them). */
const haveTools = ['nginx', 'curl'].every((tool) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

test('npm run bench -- 1 8 --quick produces throughput figures', async () => {
  if (!haveTools) throw new Error('nginx and curl are needed (scripts/setup.sh installs them)');
  const dir = cleanup.add(await makeTempDir('mirrorgate-bench-smoke-'));
  const json = join(dir.path, 'results.json');
  await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '1', '8', '--quick', '--tsx', '--json', json], {
    cwd: ROOT,
    timeout: 85_000,
    maxBuffer: 16 << 20,
  });
  const { results } = JSON.parse(await readFile(json, 'utf8')) as Results;
  expect(results.map((r) => r.id)).toEqual(['1', '8']);
  for (const r of results) expect(r.skipped).toBeUndefined();
  const [warm, scaling] = results as [Results['results'][number], Results['results'][number]];
  for (const key of ['mirrorBps', 'distributionBps', 'nginxBps', 'bareNodeBps']) expect(warm.metrics[key]).toBeGreaterThan(0);
  expect(warm.checks.length).toBe(3);
  const sizes = Object.keys(scaling.metrics).filter((k) => k.startsWith('mirror warm ms'));
  expect(sizes.length).toBe(2);
  for (const k of sizes) expect(scaling.metrics[k]).toBeGreaterThan(0);
}, 90_000);

test('npm run bench -- 11 --quick times a pod start with and without prefetch on admission', async () => {
  const dir = cleanup.add(await makeTempDir('mirrorgate-bench-smoke-'));
  const json = join(dir.path, 'results.json');
  await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '11', '--quick', '--tsx', '--json', json], { cwd: ROOT, timeout: 55_000, maxBuffer: 16 << 20 });
  const { results } = JSON.parse(await readFile(json, 'utf8')) as Results;
  expect(results.map((r) => r.id)).toEqual(['11']);
  const [prefetch] = results as [Results['results'][number]];
  expect(prefetch.skipped).toBeUndefined();
  for (const client of ['curl', 'skopeo']) {
    for (const key of ['PrefetchPullMs', 'NoPrefetchPullMs', 'PrefetchTotalMs', 'NoPrefetchTotalMs']) expect(prefetch.metrics[`${client}${key}`]).toBeGreaterThan(0);
  }
  expect(prefetch.checks.length).toBe(1);
}, 60_000);
