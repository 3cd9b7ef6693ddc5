/**
 * Webhook latency and throughput against a bare Node HTTPS server answering a constant AdmissionReview, in the same
 * run, with the same TLS setup and the same keep-alive undici client. Fixed rates are open loop (latency counted from
 * the scheduled send time, so a stall is not hidden); saturation is closed loop with a fixed concurrency.
 * Each server runs in its own process (this script with `--serve webhook|bare`), so the load generator's work
 * and garbage collection do not land in the servers' latency.
 *
 *   node --import tsx bench/webhook.ts            # 5 s per step
 *   node --import tsx bench/webhook.ts --quick    # smoke run, well under a second per step
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { systemClock } from '../src/common/clock.js';
import { silentLogger } from '../src/common/logger.js';
import { configSchema } from '../src/config/schema.js';
import { generateBundle, LOCAL_IPS } from '../src/webhook/certs.js';
import { ConfigStore } from '../src/webhook/config-store.js';
import { WebhookMetrics } from '../src/webhook/metrics.js';
import { startWebhook } from '../src/webhook/runtime.js';
import { MemoryTlsSource } from '../src/webhook/tls-source.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const stepMs = quick ? 300 : 5000;
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

interface Result {
  sent: number;
  ok: number;
  errors: number;
  p50: number;
  p99: number;
  throughput: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function post(agent: Agent, url: string): Promise<boolean> {
  const res = await request(url, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
  const text = await res.body.text();
  return res.statusCode === 200 && text.includes(uid);
}

async function fixedRate(agent: Agent, url: string, rate: number, durationMs: number): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const total = Math.floor((rate * durationMs) / 1000);
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // From the scheduled time when sent late (a stall is not hidden), from the send when sent early.
    const from = Math.min(due, performance.now());
    inflight.push(
      post(agent, url).then(
        (ok) => {
          if (ok) latencies.push(performance.now() - from);
          else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return { sent: total, ok: latencies.length, errors, p50: percentile(latencies, 50), p99: percentile(latencies, 99), throughput: (latencies.length * 1000) / elapsed };
}

async function saturate(agent: Agent, url: string, durationMs: number): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          if (await post(agent, url)) latencies.push(performance.now() - t);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return { sent: latencies.length + errors, ok: latencies.length, errors, p50: percentile(latencies, 50), p99: percentile(latencies, 99), throughput: (latencies.length * 1000) / elapsed };
}

/** Runs one server in this process (the child side) and prints its port. */
async function serve(kind: string, certDir: string): Promise<void> {
  const cert = readFileSync(path.join(certDir, 'tls.crt'), 'utf8');
  const key = readFileSync(path.join(certDir, 'tls.key'), 'utf8');
  let port: number;
  if (kind === 'webhook') {
    const config = configSchema.parse({ webhook: { mirrorProbe: { enabled: false } } });
    const metrics = new WebhookMetrics();
    const webhook = await startWebhook({
      configStore: new ConfigStore({}, { logger: silentLogger(), metrics }, config),
      logger: silentLogger(),
      clock: systemClock,
      metrics,
      listen: { host: '127.0.0.1', port: 0 },
      tls: new MemoryTlsSource({ cert, key }),
      health: { reachable: () => true },
    });
    port = webhook.port;
  } else {
    // The baseline: the same TLS, a body read, a constant AdmissionReview.
    const constant = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
    const bare = createServer({ cert, key }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(constant) });
        res.end(constant);
      });
    });
    bare.keepAliveTimeout = 100_000;
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    port = (bare.address() as AddressInfo).port;
  }
  process.stdout.write(`PORT ${port}\n`);
  // Exit cleanly when the parent is done, so `--cpu-prof` can write the server's profile.
  process.once('SIGTERM', () => process.exit(0));
}

/** Starts `--serve KIND` as a child process; resolves with its port once it listens. */
async function spawnServer(kind: string, certDir: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve', kind, '--cert-dir', certDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before listening`)));
  });
  return { port, child };
}

async function main(): Promise<void> {
  const certs = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const certDir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-bench-webhook-'));
  writeFileSync(path.join(certDir, 'tls.crt'), certs.cert);
  writeFileSync(path.join(certDir, 'tls.key'), certs.key, { mode: 0o600 });
  const webhook = await spawnServer('webhook', certDir);
  const bare = await spawnServer('bare', certDir);
  const barePort = bare.port;

  const targets = [
    { name: 'webhook', url: `https://127.0.0.1:${webhook.port}/mutate` },
    { name: 'bare', url: `https://127.0.0.1:${barePort}/mutate` },
  ];
  const agent = new Agent({ connect: { ca: certs.caCert, servername: 'localhost' }, connections: concurrency, keepAliveTimeout: 30_000, pipelining: 1 });

  for (const t of targets) await saturate(agent, t.url, warmupMs);

  const fmt = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(2));
  const rows: string[] = [];
  rows.push(`node ${process.version}, ${fixtureName} (${Buffer.byteLength(body)} bytes), ${stepMs} ms per step, keep-alive, ${concurrency} connections max`);
  rows.push('step           target    p50 ms   p99 ms   req/s    errors');
  const steps: Array<{ label: string; run: (url: string) => Promise<Result> }> = [
    ...rates.map((rate) => ({ label: `${rate}/s`, run: (url: string) => fixedRate(agent, url, rate, stepMs) })),
    { label: `saturation(${concurrency})`, run: (url: string) => saturate(agent, url, stepMs) },
  ];
  for (const step of steps) {
    const results: Record<string, Result> = {};
    for (const t of targets) {
      const r = await step.run(t.url);
      results[t.name] = r;
      rows.push(`${step.label.padEnd(14)} ${t.name.padEnd(8)} ${fmt(r.p50).padStart(7)}  ${fmt(r.p99).padStart(7)}  ${r.throughput.toFixed(0).padStart(6)}   ${r.errors}`);
    }
    const w = results.webhook!;
    const b = results.bare!;
    rows.push(`${''.padEnd(14)} ratio    ${fmt(w.p50 / b.p50).padStart(7)}  ${fmt(w.p99 / b.p99).padStart(7)}  ${(w.throughput / b.throughput).toFixed(2).padStart(6)}`);
  }
  process.stdout.write(`${rows.join('\n')}\n`);

  await agent.close();
  await Promise.all([webhook.child, bare.child].map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve()).kill('SIGTERM'))));
  rmSync(certDir, { recursive: true, force: true });
}

const serveKind = args.includes('--serve') ? args[args.indexOf('--serve') + 1] : undefined;
const run = serveKind ? serve(serveKind, args[args.indexOf('--cert-dir') + 1] ?? '') : main();
run.catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
