/**
 * Webhook latency and throughput beside two peers in the same run, with the same TLS setup and the same
 * keep-alive undici client (servers: bench/lib/review-servers.ts, each in its own process):
 * - `floor`: reads the body, `JSON.parse`s it, answers allowed with the uid: what any webhook reading the pod pays;
 * - `constant`: answers a constant AdmissionReview: TLS and HTTP alone.
 * Ratios are against the floor. `cpu us/review` is the server process's user + system CPU per answered review
 * (from /proc), which moves less with the machine's load than latency does. `sent late p99` is how late the load
 * generator itself sent reviews at a fixed rate: its own stalls, which land in every server's latency.
 *
 *   node --import tsx bench/webhook.ts                 # 5 s per step and server, in 5 slices taking turns
 *   node --import tsx bench/webhook.ts --step-ms 10000 --slices 10
 *   node --import tsx bench/webhook.ts --quick         # smoke run, well under a second per step
 *   node --import tsx bench/webhook.ts --log silent    # the webhook without its info log lines
 *   node --import tsx bench/webhook.ts --dist DIR      # the webhook compiled (tsc) into DIR, as deployed
 *   node --import tsx bench/webhook.ts --cpu-prof DIR  # also V8 CPU profiles of the servers, in DIR
 *   node --import tsx bench/webhook.ts --pin           # fixed rates: servers on CPU 0, the load generator on the others
 *   node --import tsx bench/webhook.ts --trace-gc DIR  # the servers run with --trace-gc, their stdout in DIR/NAME.log
 *   node --import tsx bench/webhook.ts --dist DIR --baseline DIR2  # also a second webhook build (`webhook-base`)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { generateBundle, LOCAL_IPS } from '../src/webhook/certs.js';
import { describeGc, fileSize, parseGcTrace, readFrom } from './lib/gc-trace.js';
import { fixedRate, saturate, summarise, type LoadResult, type LoadRun, type ReviewLoad } from './lib/review-load.js';
import { mainThreadProfile, SERVER_KINDS, spawnServer, type ServerKind, type SpawnedServer } from './lib/review-servers.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const logLevel = opt('--log') ?? 'info';
const cpuProfDir = opt('--cpu-prof') ? path.resolve(opt('--cpu-prof')!) : undefined;
const dist = opt('--dist') ? path.resolve(opt('--dist')!) : undefined;
const baseline = opt('--baseline') ? path.resolve(opt('--baseline')!) : undefined;
const gcTraceDir = opt('--trace-gc') ? path.resolve(opt('--trace-gc')!) : undefined;
const pin = args.includes('--pin');
const stepMs = quick ? 300 : Number(opt('--step-ms') ?? 5000);
const slices = quick ? 1 : Number(opt('--slices') ?? 5);
const warmupMs = quick ? 100 : 1000;
const rates = quick ? [200] : [500, 1000];
const concurrency = 32;
const fixtureName = 'pod-create-kubectl-run.json';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'admission', fixtureName);
if (!existsSync(fixture)) {
  process.stderr.write(`bench: fixture ${fixture} not found (shared/ must sit beside the project)\n`);
  process.exit(1);
}
const body = readFileSync(fixture, 'utf8');
const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;

/** A server under test and the name its rows carry (`webhook-base` is the `--baseline` build). */
interface Target {
  name: string;
  server: SpawnedServer;
  /** With `--trace-gc`: the file its trace goes to. */
  gcLog?: string;
}

/** Sets the CPUs of a process and all its threads (util-linux taskset). */
function setCpus(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`taskset (util-linux) failed to set CPUs ${cpus} of ${pid}: ${r.error?.message ?? r.stderr.trim()}`);
}

/**
 * `--pin`: at the fixed rates the servers run on CPU 0 and this process (the load generator) on the others, so
 * neither takes the other's core and a server's latency is its own. Saturation runs unpinned (every process on
 * every CPU): pinned, the generator's one core would set the ceiling for all servers alike.
 */
const ALL_CPUS = `0-${availableParallelism() - 1}`;
const GENERATOR_CPUS = availableParallelism() === 2 ? '1' : `1-${availableParallelism() - 1}`;
function pinFor(step: 'rate' | 'saturation', servers: readonly SpawnedServer[]): void {
  if (!pin) return;
  setCpus(process.pid, step === 'rate' ? GENERATOR_CPUS : ALL_CPUS);
  for (const s of servers) setCpus(s.child.pid!, step === 'rate' ? '0' : ALL_CPUS);
}

async function main(): Promise<void> {
  const certs = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const certDir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-bench-webhook-'));
  writeFileSync(path.join(certDir, 'tls.crt'), certs.cert);
  writeFileSync(path.join(certDir, 'tls.key'), certs.key, { mode: 0o600 });
  const targets: Target[] = [];
  const agent = new Agent({ connect: { ca: certs.caCert, servername: 'localhost' }, connections: concurrency, keepAliveTimeout: 30_000, pipelining: 1 });
  try {
    if (pin && availableParallelism() < 2) throw new Error('--pin needs at least 2 CPUs');
    const pinning = pin ? `at the fixed rates servers pinned to CPU 0, load generator to CPU ${GENERATOR_CPUS}; saturation on all CPUs (taskset)` : 'not pinned (servers and load generator share the CPUs)';
    if (gcTraceDir) mkdirSync(gcTraceDir, { recursive: true });
    const kinds: Array<{ name: string; kind: ServerKind; from: string | undefined }> = SERVER_KINDS.map((kind) => ({ name: kind, kind, from: dist }));
    if (baseline) kinds.push({ name: 'webhook-base', kind: 'webhook', from: baseline });
    for (const { name, kind, from } of kinds) {
      const server = await spawnServer(kind, certDir, {
        logLevel,
        uid,
        ...(from ? { dist: from } : {}),
        ...(cpuProfDir && name === kind ? { cpuProfDir } : {}),
        ...(gcTraceDir ? { nodeFlags: ['--trace-gc'], stdoutFile: path.join(gcTraceDir, `${name}.log`) } : {}),
      });
      targets.push({ name, server, ...(gcTraceDir ? { gcLog: path.join(gcTraceDir, `${name}.log`) } : {}) });
    }
    const loadFor = (t: Target): ReviewLoad => ({ agent, url: `https://127.0.0.1:${t.server.port}/mutate`, body, uid });
    for (const t of targets) await saturate(loadFor(t), concurrency, warmupMs);

    const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
    const load0 = loadavg()[0]!;
    const rows: string[] = [];
    rows.push(`node ${process.version}, ${fixtureName} (${Buffer.byteLength(body)} bytes), ${stepMs} ms per step and server in ${slices} slice(s), keep-alive, ${concurrency} connections max, webhook from ${dist ? 'compiled dist/' : 'src/ (tsx)'}, log level ${logLevel}${baseline ? `, webhook-base from ${path.relative(repoRoot, baseline)}` : ''}; ${pinning}`);
    rows.push('step           target              p50 ms   p99 ms    req/s   cpu us/review  errors  sent late p99 ms');
    const steps: Array<{ label: string; saturation?: boolean; run: (load: ReviewLoad, ms: number) => Promise<LoadRun> }> = [
      ...rates.map((rate) => ({ label: `${rate}/s`, run: (load: ReviewLoad, ms: number) => fixedRate(load, rate, ms) })),
      { label: `saturation(${concurrency})`, saturation: true, run: (load: ReviewLoad, ms: number) => saturate(load, concurrency, ms) },
    ];
    for (const step of steps) {
      pinFor(step.saturation ? 'saturation' : 'rate', targets.map((t) => t.server));
      // In slices, the servers taking turns (the first one rotating), so a change in the machine's load lands on all of them.
      const runs = new Map<string, { runs: LoadRun[]; cpuMs: number; gc: string }>(targets.map((t) => [t.name, { runs: [], cpuMs: 0, gc: '' }]));
      for (let slice = 0; slice < slices; slice++) {
        for (let k = 0; k < targets.length; k++) {
          const t = targets[(slice + k) % targets.length]!;
          const cpu0 = t.server.cpuMs();
          const gc0 = t.gcLog ? fileSize(t.gcLog) : 0;
          const run = await step.run(loadFor(t), stepMs / slices);
          const acc = runs.get(t.name)!;
          acc.cpuMs += t.server.cpuMs() - cpu0;
          if (t.gcLog) acc.gc += readFrom(t.gcLog, gc0);
          acc.runs.push(run);
        }
      }
      const results = new Map<string, LoadResult & { cpuUs: number }>();
      for (const t of targets) {
        const acc = runs.get(t.name)!;
        const r = summarise(acc.runs);
        const cpuUs = (acc.cpuMs * 1000) / Math.max(1, r.ok);
        results.set(t.name, { ...r, cpuUs });
        rows.push(`${step.label.padEnd(14)} ${t.name.padEnd(18)} ${fmt(r.p50).padStart(7)}  ${fmt(r.p99).padStart(7)}  ${r.throughput.toFixed(0).padStart(7)}  ${fmt(cpuUs, 0).padStart(13)}  ${String(r.errors).padStart(6)}  ${fmt(r.lateP99).padStart(16)}`);
      }
      if (gcTraceDir) for (const t of targets) rows.push(`${''.padEnd(14)} ${t.name.padEnd(18)} gc: ${describeGc(parseGcTrace(runs.get(t.name)!.gc))}`);
      const floor = results.get('floor')!;
      for (const kind of targets.map((t) => t.name).filter((n) => n !== 'floor')) {
        const r = results.get(kind)!;
        rows.push(
          `${''.padEnd(14)} ${`${kind}/floor`.padEnd(18)} ${fmt(r.p50 / floor.p50).padStart(7)}  ${fmt(r.p99 / floor.p99).padStart(7)}  ${fmt(r.throughput / floor.throughput).padStart(7)}  ${fmt(r.cpuUs / floor.cpuUs).padStart(13)}`,
        );
      }
    }
    rows.push(`machine load (1-min average) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}`);
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await agent.close();
    await Promise.all(targets.map((t) => t.server.stop()));
    rmSync(certDir, { recursive: true, force: true });
  }
  if (cpuProfDir) {
    for (const kind of SERVER_KINDS) process.stderr.write(`${kind}: ${mainThreadProfile(cpuProfDir, kind) ?? 'no profile'} (summary: node --import tsx bench/profile.ts FILE)\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
