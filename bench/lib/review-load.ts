/**
 * Load for the webhook bench: AdmissionReviews POSTed over a keep-alive undici Agent. Fixed rates are open loop
 * (latency counted from the scheduled send time when a request goes out late, so a stall is not hidden);
 * saturation is closed loop with a fixed concurrency. An answer counts only if it is a 200 carrying the uid.
 */
import { request, type Agent } from 'undici';

/** What one run of load measured; runs of the same step are merged with `summarise`. */
export interface LoadRun {
  /** Milliseconds, one per answered review. */
  latencies: number[];
  /** Fixed rates: how late the load generator sent each review, in milliseconds (its own stalls). */
  lateness: number[];
  errors: number;
  elapsedMs: number;
}

export interface LoadResult {
  ok: number;
  errors: number;
  p50: number;
  p99: number;
  /** The 99th percentile of `lateness` (NaN for saturation). */
  lateP99: number;
  throughput: number;
}

export interface ReviewLoad {
  agent: Agent;
  url: string;
  body: string;
  uid: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Percentiles over all the runs' latencies, throughput over their summed time. */
export function summarise(runs: readonly LoadRun[]): LoadResult {
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const elapsedMs = runs.reduce((a, r) => a + r.elapsedMs, 0);
  const errors = runs.reduce((a, r) => a + r.errors, 0);
  const lateness = runs.flatMap((r) => r.lateness).sort((a, b) => a - b);
  return {
    ok: latencies.length,
    errors,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    lateP99: percentile(lateness, 99),
    throughput: (latencies.length * 1000) / elapsedMs,
  };
}

async function post(load: ReviewLoad): Promise<boolean> {
  const res = await request(load.url, { method: 'POST', dispatcher: load.agent, headers: { 'content-type': 'application/json' }, body: load.body });
  const text = await res.body.text();
  return res.statusCode === 200 && text.includes(load.uid);
}

export async function fixedRate(load: ReviewLoad, rate: number, durationMs: number): Promise<LoadRun> {
  const latencies: number[] = [];
  const lateness: number[] = [];
  let errors = 0;
  const start = performance.now();
  const total = Math.floor((rate * durationMs) / 1000);
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // From the scheduled time when sent late (a stall is not hidden), from the send when sent early.
    const now = performance.now();
    const from = Math.min(due, now);
    lateness.push(Math.max(0, now - due));
    inflight.push(
      post(load).then(
        (ok) => {
          if (ok) latencies.push(performance.now() - from);
          else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  return { latencies, lateness, errors, elapsedMs: performance.now() - start };
}

export async function saturate(load: ReviewLoad, concurrency: number, durationMs: number): Promise<LoadRun> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          if (await post(load)) latencies.push(performance.now() - t);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, lateness: [], errors, elapsedMs: performance.now() - start };
}
