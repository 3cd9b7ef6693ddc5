import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup } from '../test/helpers/tmp.js';
import type { BenchContext, Scenario } from './lib/context.js';
import { buildMirror, toolVersions } from './lib/procs.js';
import { emptyResult, renderResult, type ScenarioResult } from './lib/report.js';
import { warmBlob } from './scenarios/s1-warm-blob.js';
import { fanOut } from './scenarios/s2-fan-out.js';
import { manifests } from './scenarios/s3-manifests.js';
import { coldPull } from './scenarios/s4-cold-pull.js';
import { herd } from './scenarios/s5-herd.js';
import { authCost } from './scenarios/s6-auth.js';
import { webhook } from './scenarios/s7-webhook.js';
import { scaling } from './scenarios/s8-scaling.js';
import { push } from './scenarios/s9-push.js';
import { objectStorage } from './scenarios/s10-object-storage.js';
import { prefetch } from './scenarios/s11-prefetch.js';
import { accelRedirect } from './scenarios/s12-accel-redirect.js';

/**
 * The benchmark runner: `npm run bench` runs every scenario, `npm run bench -- 1 3` some of them,
 * `--quick` each once with tiny sizes (smoke mode). Results are printed as Markdown and written as JSON.
 */

const USAGE = `usage: npm run bench -- [scenario ...] [options]
  scenarios: ${'1..12'} (default: all)
  --quick          one run each, tiny sizes (smoke mode)
  --runs N         repetitions per measurement (default 5; 1 with --quick)
  --cpu-prof DIR   run the mirror with --cpu-prof, profiles written to DIR
  --worktree       build the mirror from the working tree (default: the committed HEAD)
  --reuse-build    run the mirror already built in bench/results/build (e.g. patched for an experiment)
  --tsx            run the mirror from the working tree's src/ under tsx, without building
  --workers N      scenarios 1 and 2 also measure a mirror with mirror.workers N (an extra row, same run);
                   default: the machine's core count when it has 2 or more (not with --quick); 0: no such row
  --json FILE      where to write the JSON results (default bench/results/latest.json)
  --markdown FILE  also write the Markdown report there`;

const SCENARIOS: Scenario[] = [warmBlob, fanOut, manifests, coldPull, herd, authCost, webhook, scaling, push, objectStorage, prefetch, accelRedirect];

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      'cpu-prof': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      workers: { type: 'string' },
      worktree: { type: 'boolean', default: false },
      'reuse-build': { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const root = resolve(import.meta.dirname, '..');
  const known = new Map(SCENARIOS.map((s) => [s.id, s]));
  const unknown = positionals.filter((p) => !known.has(p));
  if (unknown.length) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')} (have: ${[...known.keys()].join(', ')})\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const selected = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.id)) : SCENARIOS;
  const runs = values.quick ? 1 : Number(values.runs ?? 5);
  const asked = values.workers === undefined ? (values.quick ? 0 : availableParallelism()) : Number(values.workers);
  if (!(Number.isInteger(asked) && asked >= 0) || (values.workers !== undefined && asked === 1)) {
    process.stderr.write(`--workers: 0 or a whole number of at least 2, not ${values.workers}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const workers = asked >= 2 ? asked : undefined;
  const log = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);

  let mirrorMain = join(root, 'src', 'main.ts');
  let revision = 'worktree (tsx)';
  if (values['reuse-build']) {
    mirrorMain = join(root, 'bench', 'results', 'build', 'dist', 'main.js');
    revision = 'previous build in bench/results/build (may be patched)';
    if (!existsSync(mirrorMain)) throw new Error(`${mirrorMain} does not exist: run without --reuse-build first`);
  } else if (!values.tsx) {
    log('building the mirror');
    ({ main: mirrorMain, revision } = await buildMirror(values.worktree ? 'worktree' : 'head', log));
  }
  const versions = await toolVersions();
  const started = new Date();
  const header = [
    `# mirrorgate benchmarks (${started.toISOString()})`,
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}.`,
    `Versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    `Mode: ${values.quick ? 'quick (smoke, tiny sizes)' : 'full'}, ${runs} run(s) per measurement; mirror at ${revision}${values.tsx ? '' : ', built with tsc'}.`,
    '',
  ].join('\n');
  process.stdout.write(`${header}\n`);

  const results: ScenarioResult[] = [];
  for (const scenario of selected) {
    const cleanup = new Cleanup();
    const ctx: BenchContext = { quick: values.quick, runs, mirrorMain, cpuProfDir: values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined, workers, cleanup, log };
    const t0 = Date.now();
    const load0 = loadavg()[0]!;
    log(`scenario ${scenario.id}: ${scenario.title}`);
    let result: ScenarioResult;
    try {
      result = await scenario.run(ctx);
    } catch (err) {
      result = emptyResult(scenario.id, scenario.title);
      result.skipped = `failed: ${(err as Error).stack ?? String(err)}`;
      process.exitCode = 1;
    } finally {
      await cleanup.run().catch((err: unknown) => log(`clean-up failed: ${String(err)}`));
    }
    result.metrics.elapsedSeconds = (Date.now() - t0) / 1000;
    // The machine is shared: say how busy it was (1-minute load average; 2 cores means 2.0 is full).
    if (!result.skipped) result.notes.push(`Machine load (1-min load average) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}; ${result.metrics.elapsedSeconds.toFixed(0)} s.`);
    log(`scenario ${scenario.id} took ${result.metrics.elapsedSeconds.toFixed(0)} s`);
    results.push(result);
    process.stdout.write(`${renderResult(result)}\n`);
  }

  const jsonPath = resolve(values.json ?? join(root, 'bench', 'results', 'latest.json'));
  await mkdir(dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, `${JSON.stringify({ started: started.toISOString(), revision, quick: values.quick, runs, versions, results }, null, 2)}\n`);
  log(`results written to ${jsonPath}`);
  if (values.markdown) {
    await writeFile(values.markdown, `${header}\n${results.map(renderResult).join('\n')}`);
  }
  if (!existsSync(jsonPath)) process.exitCode = 1;
}

await main();
