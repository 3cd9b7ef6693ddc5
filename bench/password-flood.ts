/**
 * How fast the mirror answers `/healthz` and an already-verified pull (a cached manifest GET with Basic
 * credentials checked earlier) while 80 connections send wrong passwords (htpasswd, bcrypt cost 10), against
 * the same probes with no flood, on each revision given, in the same run.
 *
 *   node --import tsx bench/password-flood.ts [--revs caf53ad,worktree] [--seconds 6] [--connections 80] [--rounds 2]
 *     [--auth '{"maxConcurrentVerifications":1}']   (extra mirror.auth settings, for revisions that know them)
 *
 * Each revision is compiled (`git archive` + tsc, or the working tree) and runs as its own process, a fresh
 * one per measurement. Two floods, both ignoring 429 and sending the next guess at once: from one client
 * address, and from as many addresses as connections (127.0.1.x, so per-address budgets do not stop it).
 * Probes come from 127.0.0.1, one at a time, every 100 ms. Rounds alternate the revisions so drift on a
 * shared machine hits all of them; the round with the lowest flood /healthz median is reported for each.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { startDockerRegistry } from '../test/helpers/docker-registry.js';
import { MediaTypes, pushImage } from '../test/helpers/images.js';
import { Cleanup, makeTempDir } from '../test/helpers/tmp.js';
import { startMirrorProcess } from './lib/procs.js';
import { fmtMs, fmtRatio, max, median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    revs: { type: 'string', default: 'worktree' },
    seconds: { type: 'string', default: '6' },
    connections: { type: 'string', default: '80' },
    rounds: { type: 'string', default: '2' },
    auth: { type: 'string', default: '{}' },
  },
});
const rounds = Number(values.rounds);
const extraAuth = JSON.parse(values.auth) as Record<string, unknown>;
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const cleanup = new Cleanup();
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** Compiles a revision (or the working tree) under bench/results, where the project's node_modules resolve. */
async function build(rev: string): Promise<string> {
  const dir = join(ROOT, 'bench', 'results', `password-flood-${rev.replace(/[^\w.-]/g, '_')}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let project = join(ROOT, 'tsconfig.build.json');
  if (rev !== 'worktree') {
    await run('bash', ['-c', 'git archive "$1" src tsconfig.json tsconfig.build.json | tar -x -C "$2"', 'archive', rev, dir], { cwd: ROOT });
    project = join(dir, 'tsconfig.build.json');
  }
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project, '--outDir', join(dir, 'dist')], { cwd: ROOT });
  return join(dir, 'dist', 'main.js');
}

interface Probes {
  healthz: number[];
  pull: number[];
}

/** Times /healthz and the verified pull, one after the other, every 100 ms for `ms`. */
async function probe(base: string, agent: Agent, path: string, headers: Record<string, string>, ms: number): Promise<Probes> {
  const out: Probes = { healthz: [], pull: [] };
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const [what, p, h] of [['healthz', '/healthz', {}], ['pull', path, headers]] as const) {
      const started = performance.now();
      const res = await request(`${base}${p}`, { headers: h, dispatcher: agent });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${what} answered ${res.statusCode}`);
      out[what].push(performance.now() - started);
    }
    await sleep(100);
  }
  return out;
}

async function measure(main: string, upstream: string, htpasswd: string, path: string, addresses: 'one' | 'many') {
  const mirror = cleanup.add(await startMirrorProcess({ main, upstreams: { 'docker.io': upstream }, mirrorConfig: { auth: { htpasswd, ...extraAuth } } }));
  const probeAgent = new Agent({ connections: 2 });
  const headers = { authorization: basic('bench', 'bench-password'), accept: MediaTypes.dockerManifest };
  await probe(mirror.url, probeAgent, path, headers, 500); // fills the cache and the verification cache
  const quiet = await probe(mirror.url, probeAgent, path, headers, 2000);

  let flooding = true;
  const statuses = new Map<number, number>();
  const agents = Array.from({ length: addresses === 'one' ? 1 : connections }, (_, i) =>
    new Agent({ connections: addresses === 'one' ? connections : 1, localAddress: addresses === 'one' ? '127.0.0.2' : `127.0.1.${i + 1}` }),
  );
  const flood = Array.from({ length: connections }, async (_, i) => {
    const agent = agents[i % agents.length]!;
    for (let n = 0; flooding; n++) {
      try {
        const res = await request(`${mirror.url}/v2/`, { headers: { authorization: basic(`guess-${i}-${n}`, `wrong-${n}`) }, dispatcher: agent });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
      }
    }
  });
  await sleep(500);
  const started = Date.now();
  const loaded = await probe(mirror.url, probeAgent, path, headers, seconds * 1000);
  const elapsed = (Date.now() - started) / 1000;
  flooding = false;
  await Promise.all(flood);
  await Promise.all([...agents, probeAgent].map((a) => a.close()));
  await mirror.stop();
  return { quiet, loaded, statuses, checksPerSecond: (statuses.get(401) ?? 0) / (elapsed + 0.5) };
}

async function main(): Promise<void> {
  const registry = cleanup.add(await startDockerRegistry());
  const image = await pushImage(registry.url, 'library/bench', '1', { layers: [1024], format: 'docker', seed: 'bench-password-flood' });
  const dir = cleanup.add(await makeTempDir('mirrorgate-bench-flood-'));
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `bench:${bcrypt.hashSync('bench-password', 10)}\n`);
  const path = `/v2/library/bench/manifests/${image.digest}`;
  const revs = values.revs.split(',');
  const mains = new Map<string, string>();
  for (const rev of revs) mains.set(rev, await build(rev));
  const best = new Map<string, { row: string[]; p50: number }>();
  for (let round = 1; round <= rounds; round++) {
    for (const rev of revs) {
      for (const addresses of ['one', 'many'] as const) {
        const r = await measure(mains.get(rev)!, registry.url, htpasswd, path, addresses);
        const statuses = [...r.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
        const row = [
          rev,
          addresses === 'one' ? '1 address' : `${connections} addresses`,
          `${fmtMs(median(r.quiet.healthz))} / ${fmtMs(max(r.quiet.healthz))}`,
          `${fmtMs(median(r.loaded.healthz))} / ${fmtMs(max(r.loaded.healthz))}`,
          `${fmtMs(median(r.quiet.pull))} / ${fmtMs(max(r.quiet.pull))}`,
          `${fmtMs(median(r.loaded.pull))} / ${fmtMs(max(r.loaded.pull))}`,
          fmtRatio(median(r.loaded.healthz) / median(r.quiet.healthz)),
          `${r.checksPerSecond.toFixed(1)}/s`,
          statuses,
        ];
        process.stderr.write(`round ${round}: | ${row.join(' | ')} |\n`);
        const key = `${rev} ${addresses}`;
        const p50 = median(r.loaded.healthz);
        if (!best.has(key) || p50 < best.get(key)!.p50) best.set(key, { row, p50 });
      }
    }
  }
  const rows = [...best.values()].map((b) => `| ${b.row.join(' | ')} |`);
  process.stdout.write(
    `\n${connections} connections sending wrong passwords (bcrypt cost 10) for ${seconds} s; probes every 100 ms; p50 / max; best of ${rounds} rounds\n\n` +
      '| revision | flood from | /healthz quiet | /healthz flood | verified pull quiet | verified pull flood | /healthz p50 flood / quiet | 401s | flood answers |\n' +
      '|---|---|---|---|---|---|---|---|---|\n' +
      `${rows.join('\n')}\n`,
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
