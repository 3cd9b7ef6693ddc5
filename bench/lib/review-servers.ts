/**
 * Starts the webhook bench's servers, each in its own process, so the load generator's work and garbage
 * collection do not land in their latency and their CPU can be read from /proc:
 * - `webhook`: `mirrorgate webhook` itself, from the compiled `dist/main.js` (as deployed) or from src/ under tsx,
 *   with the bench's certificate, `--no-mirror-probe`, no cluster, its log (stdout) written to a file;
 * - `floor` and `constant`: the peers in review-server.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds } from './procs.js';

export const SERVER_KINDS = ['webhook', 'floor', 'constant'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export interface ServerOptions {
  /** The webhook's log level (`MIRRORGATE_LOG_LEVEL`): `info` as deployed. */
  logLevel: string;
  /** The uid the constant server answers with (the fixture's, so the client's check passes). */
  uid: string;
  /** Run the webhook from this compiled dist/ directory instead of src/ under tsx. */
  dist?: string;
  /** Write V8 CPU profiles of this server into DIR/KIND when it exits (see `mainThreadProfile`). */
  cpuProfDir?: string;
  /** Extra V8/Node flags for this server (e.g. `--trace-gc`, to study its collector under load). */
  nodeFlags?: string[];
  /** Where the server's stdout goes (the webhook's log, `--trace-gc` lines); for the webhook a file in the certificate directory by default, discarded for the peers. */
  stdoutFile?: string;
}

export interface SpawnedServer {
  kind: ServerKind;
  port: number;
  child: ChildProcess;
  /** User + system CPU time of the process so far, in milliseconds (from /proc; 10 ms resolution). */
  cpuMs(): number;
  stop(): Promise<void>;
}

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const PEER_MAIN = path.join(import.meta.dirname, 'review-server.ts');

/** The main thread's profile among those a server wrote into DIR/KIND (tsx's loader thread writes one too): the largest. */
export function mainThreadProfile(cpuProfDir: string, kind: ServerKind): string | undefined {
  const dir = path.join(cpuProfDir, kind);
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Waits for the webhook's `webhook serving /mutate over HTTPS` log line and returns its port. */
async function webhookPort(logFile: string, child: ChildProcess): Promise<number> {
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const m = /"port":(\d+)[^\n]*"msg":"webhook serving \/mutate over HTTPS"/.exec(text);
    if (m) return Number(m[1]);
    await sleep(50);
  }
  throw new Error(`the webhook did not start (exit ${child.exitCode}); its log:\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
}

/** Starts one server; resolves once it listens. */
export async function spawnServer(kind: ServerKind, certDir: string, opts: ServerOptions): Promise<SpawnedServer> {
  const prof = [...(opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(opts.cpuProfDir, kind)] : []), ...(opts.nodeFlags ?? [])];
  let child: ChildProcess;
  let port: number;
  if (kind === 'webhook') {
    const main = opts.dist ? [path.join(opts.dist, 'main.js')] : ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')];
    const cli = ['webhook', '--listen', '127.0.0.1:0', '--tls-cert', path.join(certDir, 'tls.crt'), '--tls-key', path.join(certDir, 'tls.key'), '--no-mirror-probe'];
    const logFile = opts.stdoutFile ?? path.join(certDir, 'webhook.log');
    const log = await open(logFile, 'w');
    // No cluster: admission only (no pull secret sync, no caBundle patching), as the command runs outside one.
    const { KUBECONFIG: _kubeconfig, KUBERNETES_SERVICE_HOST: _host, ...env } = process.env;
    child = spawn(process.execPath, [...prof, ...main, ...cli], { cwd: ROOT, env: { ...env, MIRRORGATE_LOG_LEVEL: opts.logLevel }, stdio: ['ignore', log.fd, 'inherit'] });
    await log.close();
    port = await webhookPort(logFile, child);
  } else {
    const stdout = opts.stdoutFile ? await open(opts.stdoutFile, 'w') : undefined;
    child = spawn(process.execPath, [...prof, ...process.execArgv, PEER_MAIN, '--serve', kind, '--cert-dir', certDir, '--uid', opts.uid], {
      stdio: ['ignore', stdout ? stdout.fd : 'ignore', 'inherit', 'pipe'],
    });
    await stdout?.close();
    const portPipe = child.stdio[3] as NodeJS.ReadableStream;
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer): void => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) {
          portPipe.off('data', onData).resume();
          resolve(Number(m[1]));
        }
      };
      portPipe.on('data', onData);
      child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before listening`)));
    });
  }
  const pid = child.pid!;
  return {
    kind,
    port,
    child,
    cpuMs: () => cpuSeconds(pid) * 1000,
    stop: () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve()).kill('SIGTERM'))),
  };
}
