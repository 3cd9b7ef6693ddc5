import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pool, request } from 'undici';
import { makeTempDir } from '../../test/helpers/tmp.js';
import { percentile } from './stats.js';

/**
 * Load generation. Byte throughput is measured with curl (C, one process, `--parallel` for many transfers
 * at once), with a small undici client as a cross-check; request rates with wrk, with an undici client as a
 * cross-check and fallback. Every result carries the client's own CPU time so a report can show the client
 * was not the bottleneck.
 */

const run = promisify(execFile);

export interface Transfer {
  status: number;
  bytes: number;
  /** curl's time_total for this transfer, ms. */
  ms: number;
}

export interface CurlResult {
  transfers: Transfer[];
  /** From the first transfer's start to the last one's end, ms (the largest time_total: all start together). */
  makespanMs: number;
  /** CPU seconds curl used (user + system). */
  clientCpu: number;
}

/**
 * Downloads every URL once with one curl process, all at the same time (`--parallel`), bodies to /dev/null.
 * Throws when a transfer does not answer 200.
 */
export async function curlDownload(urls: string[], opts: { headers?: Record<string, string>; followRedirects?: boolean } = {}): Promise<CurlResult> {
  const args = ['-s', '--http1.1', '-w', '%{http_code} %{size_download} %{time_total}\\n'];
  if (opts.followRedirects) args.push('-L');
  if (urls.length > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(urls.length));
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  for (const u of urls) args.push('-o', '/dev/null', u);
  // `times` after curl reports the CPU its children used.
  const { stdout } = await run('bash', ['-c', 'curl "$@"; rc=$?; times; exit $rc', 'curl', ...args], { maxBuffer: 16 << 20 });
  const lines = stdout.trim().split('\n');
  const transfers: Transfer[] = [];
  let clientCpu = 0;
  for (const line of lines) {
    const t = /^(\d{3}) (\d+) ([\d.]+)$/.exec(line.trim());
    if (t) {
      transfers.push({ status: Number(t[1]), bytes: Number(t[2]), ms: Number(t[3]) * 1000 });
      continue;
    }
    const cpu = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(line.trim());
    if (cpu) clientCpu = Number(cpu[1]) * 60 + Number(cpu[2]) + Number(cpu[3]) * 60 + Number(cpu[4]); // the last pair: children
  }
  if (transfers.length !== urls.length) throw new Error(`curl reported ${transfers.length} transfers for ${urls.length} URLs:\n${stdout}`);
  const bad = transfers.find((t) => t.status !== 200);
  if (bad) throw new Error(`curl: HTTP ${bad.status} from one of ${urls[0]}...`);
  return { transfers, makespanMs: Math.max(...transfers.map((t) => t.ms)), clientCpu };
}

/** One download with undici (the bench process is the client), body counted and dropped. */
export async function undiciDownload(url: string): Promise<{ bytes: number; ms: number; clientCpu: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await request(url, { bodyTimeout: 120_000, headersTimeout: 120_000 });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode}`);
  return { bytes, ms, clientCpu: (cpu.user + cpu.system) / 1e6 };
}

export interface RateResult {
  requests: number;
  /** Requests per second over the run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers that were not 2xx (or transport errors). */
  errors: number;
  /** CPU seconds the load generator used, and the run's length in seconds. */
  clientCpu: number;
  seconds: number;
  tool: 'wrk' | 'undici';
}

export interface RateOptions {
  url: string;
  method: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  connections: number;
  durationMs: number;
}

/** Closed-loop load with undici: `connections` workers, each sending its next request when the last answered. */
export async function undiciRate(opts: RateOptions): Promise<RateResult> {
  const u = new URL(opts.url);
  const pool = new Pool(u.origin, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + opts.durationMs;
  const path = u.pathname + u.search;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const s = performance.now();
      try {
        const res = await pool.request({ path, method: opts.method, headers: opts.headers ?? {} });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode >= 300) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await pool.close();
  return {
    requests: latencies.length,
    rps: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    seconds,
    tool: 'undici',
  };
}

let wrkChecked: boolean | undefined;
export async function haveWrk(): Promise<boolean> {
  if (wrkChecked === undefined) {
    wrkChecked = await run('wrk', ['-v']).then(
      () => true,
      (err: { stdout?: string }) => /wrk/.test(err.stdout ?? ''), // `wrk -v` exits 1 after printing its version
    );
  }
  return wrkChecked;
}

function parseWrkDuration(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 'ms') return n;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return Number.NaN;
}

/** Closed-loop load with wrk (one thread, `connections` connections), latency percentiles from `--latency`. */
export async function wrkRate(opts: RateOptions): Promise<RateResult> {
  const dir = await makeTempDir('mirrorgate-bench-wrk-');
  try {
    const script = join(dir.path, 'req.lua');
    await writeFile(script, `wrk.method = "${opts.method}"\n`);
    const args = ['-t1', `-c${opts.connections}`, `-d${Math.max(1, Math.round(opts.durationMs / 1000))}s`, '--latency', '-s', script];
    for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
    args.push(opts.url);
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', 'wrk "$@"; rc=$?; times; exit $rc', 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk failed (${code}): ${err}${out}`))));
    });
    const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? Number.NaN);
    const lat = (p: string): number => {
      const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(stdout);
      return m ? parseWrkDuration(m[1]!, m[2]!) : Number.NaN;
    };
    const requests = num(/(\d+) requests in/);
    const seconds = (() => {
      const m = /requests in ([\d.]+)(us|ms|s|m)/.exec(stdout);
      return m ? parseWrkDuration(m[1]!, m[2]!) / 1000 : Number.NaN;
    })();
    const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const errors = (Number.isNaN(non2xx) ? 0 : non2xx) + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
    const times = [...stdout.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)].at(-1);
    const clientCpu = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : Number.NaN;
    return { requests, rps: num(/Requests\/sec:\s+([\d.]+)/), p50Ms: lat('50'), p99Ms: lat('99'), errors, clientCpu, seconds, tool: 'wrk' };
  } finally {
    await dir.cleanup();
  }
}

/** wrk when installed, otherwise the undici client. */
export async function rate(opts: RateOptions): Promise<RateResult> {
  return (await haveWrk()) ? wrkRate(opts) : undiciRate(opts);
}
