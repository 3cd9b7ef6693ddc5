import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { makeTempDir } from '../../test/helpers/tmp.js';
import { reapOnExit } from '../../test/helpers/reap-children.js';
import { startNginxServer } from '../../test/helpers/nginx.js';

/**
 * The servers under test, each its own process so its CPU and memory can be read from /proc: the mirror
 * (built JavaScript, as deployed), nginx (the static-file floor). Debian's docker-registry comes from the test
 * harness (test/helpers/docker-registry.ts), also a child process.
 */

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');


/**
 * Compiles the mirror into bench/results/build and returns its entry point and the revision built. By default
 * from the committed tree (`git archive`), so a run measures a known commit even while the working tree is
 * being edited; when HEAD does not compile, the working tree, then the newest of the last few commits that
 * does. `from: 'worktree'` compiles the working tree only.
 */
export async function buildMirror(from: 'head' | 'worktree' = 'head', log: (m: string) => void = () => {}): Promise<{ main: string; revision: string }> {
  const buildDir = join(ROOT, 'bench', 'results', 'build');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const candidates = from === 'worktree' ? ['worktree'] : ['HEAD', 'worktree', ...[1, 2, 3, 4, 5].map((n) => `HEAD~${n}`)];
  let lastError = '';
  for (const rev of candidates) {
    await rm(buildDir, { recursive: true, force: true });
    await mkdir(buildDir, { recursive: true });
    let project = join(ROOT, 'tsconfig.build.json');
    let revision: string;
    if (rev === 'worktree') {
      const dirty = (await run('git', ['status', '--porcelain', 'src'], { cwd: ROOT })).stdout.trim();
      revision = `${(await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT })).stdout.trim()}${dirty ? ' + uncommitted changes' : ''}`;
    } else {
      revision = (await run('git', ['rev-parse', '--short', rev], { cwd: ROOT })).stdout.trim();
      await run('bash', ['-c', 'git archive "$1" src tsconfig.json tsconfig.build.json | tar -x -C "$2"', 'archive', rev, buildDir], { cwd: ROOT });
      project = join(buildDir, 'tsconfig.build.json');
    }
    try {
      await run(process.execPath, [tsc, '-p', project, '--outDir', join(buildDir, 'dist')], { cwd: ROOT });
      return { main: join(buildDir, 'dist', 'main.js'), revision };
    } catch (err) {
      lastError = (err as { stdout?: string }).stdout ?? String(err);
      log(`${rev} (${revision}) does not compile, trying the next candidate:\n${lastError.trim().split('\n').slice(0, 3).join('\n')}`);
    }
  }
  throw new Error(`cannot build the mirror: ${lastError}`);
}

// ---------------------------------------------------------------------------------------------------------
// /proc

export interface ProcMemory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size (VmHWM) since start or the last resetPeak, bytes. */
  hwm: number;
}

export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux: `echo 5 > /proc/PID/clear_refs`). False when not permitted. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Samples VmRSS every `everyMs` until stopped; returns the largest seen (a fallback where VmHWM is not resettable). */
export function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let peak = 0;
  const tick = (): void => {
    try {
      peak = Math.max(peak, procMemory(pid).rss);
    } catch {
      /* process gone */
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return peak;
    },
  };
}

/** A process and its descendants (a mirror with workers: the primary and every worker), by parent pid in /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/**
 * Proportional set size (Linux `smaps_rollup`), bytes: each page shared by n processes counts 1/n in each, so
 * the sum over processes counts the node binary and shared libraries once, where a sum of RSS counts them in
 * every process.
 */
export function procPss(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? Number.NaN) * 1024;
}

/** The sum of `read` over processes that are still there. */
function sumOver(pids: number[], read: (pid: number) => number): number {
  let sum = 0;
  for (const p of pids) {
    try {
      sum += read(p);
    } catch {
      /* process gone */
    }
  }
  return sum;
}

/** Samples the sum of `read` over several processes every `everyMs` until stopped; `stop` returns the largest sum seen. */
function samplePeakSum(pids: number[], everyMs: number, read: (pid: number) => number): { stop(): number } {
  let peak = 0;
  const tick = (): void => {
    peak = Math.max(peak, sumOver(pids, read));
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return peak;
    },
  };
}

/** Samples the sum of several processes' PSS every `everyMs` until stopped; returns the largest sum seen. */
export function sampleTreePss(pids: number[], everyMs = 50): { stop(): number } {
  return samplePeakSum(pids, everyMs, procPss);
}

/** Peak memory of several processes together, for one measured run: VmHWM reset first, VmRSS summed every `everyMs`. */
export function sampleTreeRss(pids: number[], everyMs = 20): { stop(): number } {
  const canReset = pids.every((p) => resetPeak(p));
  const sampler = samplePeakSum(pids, everyMs, (p) => procMemory(p).rss);
  return {
    stop() {
      const peak = sampler.stop();
      // The sum of each process's own peak: never below the true peak of the sum (they need not peak together).
      const hwm = canReset ? sumOver(pids, (p) => procMemory(p).hwm) : 0;
      return Math.max(peak, hwm);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The mirror

export interface MirrorProcess {
  url: string;
  host: string;
  pid: number;
  storage: string;
  stop(): Promise<void>;
}

export interface MirrorProcessOptions {
  /** Entry point: the built main.js (see buildMirror), or src/main.ts (then run under tsx). */
  main: string;
  /** Upstream host -> URL, e.g. `{ 'docker.io': upstream.url }`. */
  upstreams: Record<string, string>;
  /** Extra configuration merged into `mirror:` (e.g. auth settings). */
  mirrorConfig?: Record<string, unknown>;
  /** Extra configuration merged into `mirror.storage:` beside its temp `path` (e.g. `accelRedirect`). */
  storageConfig?: Record<string, unknown>;
  /** Write a V8 CPU profile (`--cpu-prof`) into this directory when the process exits. */
  cpuProfDir?: string;
  /** Log level (default `warn`: like the reference registry with its access log off). */
  logLevel?: string;
}

export async function startMirrorProcess(opts: MirrorProcessOptions): Promise<MirrorProcess> {
  const dir = await makeTempDir('mirrorgate-bench-mirror-');
  const storage = join(dir.path, 'storage');
  const config = {
    log: { level: opts.logLevel ?? 'warn' },
    mirror: { listen: '127.0.0.1:0', storage: { path: storage, ...(opts.storageConfig ?? {}) }, ...(opts.mirrorConfig ?? {}) },
    upstreams: Object.fromEntries(Object.entries(opts.upstreams).map(([h, url]) => [h, { url }])),
  };
  const configPath = join(dir.path, 'config.yml');
  await writeFile(configPath, stringify(config));
  const nodeArgs = opts.main.endsWith('.ts') ? ['--import', 'tsx'] : [];
  if (opts.cpuProfDir) {
    await mkdir(opts.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir);
  }
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MIRRORGATE_')) env[k] = v;
  const child = spawn(process.execPath, [...nodeArgs, opts.main, 'mirror', '--config', configPath], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  reapOnExit(child);
  let log = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`the mirror did not start in time:\n${log}`)), 20_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString('utf8')).slice(-64 * 1024);
      const m = /listening on (https?:\/\/[^\s]+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the mirror exited (${code}) before listening:\n${log}`));
    });
  });
  let stopped = false;
  return {
    url,
    host: new URL(url).host,
    pid: child.pid!,
    storage,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await dir.cleanup();
    },
  };
}

/** Whether the mirror accepts `mirrorConfig` (e.g. a feature's settings) at start-up. */
export async function mirrorAccepts(main: string, mirrorConfig: Record<string, unknown>): Promise<{ ok: boolean; message: string }> {
  try {
    const m = await startMirrorProcess({ main, upstreams: { 'docker.io': 'http://127.0.0.1:9' }, mirrorConfig });
    await m.stop();
    return { ok: true, message: '' };
  } catch (err) {
    return { ok: false, message: (err as Error).message.split('\n').slice(0, 6).join(' ') };
  }
}

// ---------------------------------------------------------------------------------------------------------
// nginx

export interface Nginx {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Debian's nginx serving `root` statically with sendfile, one worker, no access log: the floor for serving
 * bytes from disk on this machine. Runs in the foreground with its own prefix, config and pid file.
 */
export function startNginx(root: string, opts: { workers?: number } = {}): Promise<Nginx> {
  return startNginxServer({
    server: (listen) => `  server { listen ${listen}; root ${root}; location / { } }`,
    probePath: '/',
    http: ['default_type application/octet-stream;'],
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
  });
}

export interface FileServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** The bare Node server of file-server.ts serving `root`, in its own process: the embedded mirror's floor. */
export async function startFileServer(root: string): Promise<FileServer> {
  const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'file-server.ts'), root], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  reapOnExit(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    void exited.then(() => rej(new Error(`the file server exited (${child.exitCode}) before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Versions, for the report

export async function toolVersions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[], pick: RegExp): Promise<string> => {
    try {
      const { stdout, stderr } = await run(cmd, args);
      return pick.exec(`${stdout}\n${stderr}`)?.[1] ?? 'unknown';
    } catch (err) {
      // Some tools (wrk -v) print their version and exit non-zero.
      const e = err as { stdout?: string; stderr?: string; code?: unknown };
      return pick.exec(`${e.stdout ?? ''}\n${e.stderr ?? ''}`)?.[1] ?? 'not installed';
    }
  };
  return {
    node: process.version,
    distribution: await v('docker-registry', ['--version'], /distribution (\S+)/),
    nginx: await v('nginx', ['-v'], /nginx\/(\S+)/),
    curl: await v('curl', ['--version'], /curl (\S+)/),
    wrk: await v('wrk', ['-v'], /wrk (\S+)/),
    skopeo: await v('skopeo', ['--version'], /version (\S+)/),
  };
}
