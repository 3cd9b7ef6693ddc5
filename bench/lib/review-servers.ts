/**
 * Starts the webhook bench's servers (bench/lib/review-server.ts), each in its own process, so the load
 * generator's work and garbage collection do not land in their latency and their CPU can be read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { cpuSeconds } from './procs.js';

export const SERVER_KINDS = ['webhook', 'floor', 'constant'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export interface ServerOptions {
  /** The webhook's log level: `info` as deployed, `silent` to see what logging costs. */
  logLevel: string;
  /** The uid the constant server answers with (the fixture's, so the client's check passes). */
  uid: string;
  /** Run the webhook from this compiled dist/ directory instead of src/ under tsx. */
  dist?: string;
  /** Write V8 CPU profiles of this server into DIR/KIND when it exits (see `mainThreadProfile`). */
  cpuProfDir?: string;
}

export interface SpawnedServer {
  kind: ServerKind;
  port: number;
  child: ChildProcess;
  /** User + system CPU time of the process so far, in milliseconds (from /proc; 10 ms resolution). */
  cpuMs(): number;
  stop(): Promise<void>;
}

const SERVER_MAIN = path.join(import.meta.dirname, 'review-server.ts');

/** The main thread's profile among those a server wrote into DIR/KIND: the largest file. */
export function mainThreadProfile(cpuProfDir: string, kind: ServerKind): string | undefined {
  const dir = path.join(cpuProfDir, kind);
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Starts one server; resolves once it listens. */
export async function spawnServer(kind: ServerKind, certDir: string, opts: ServerOptions): Promise<SpawnedServer> {
  // One directory per server: every thread (tsx's loader runs in one) writes its own profile.
  const prof = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(opts.cpuProfDir, kind)] : [];
  const serverArgs = ['--serve', kind, '--cert-dir', certDir, '--log', opts.logLevel, '--uid', opts.uid, ...(opts.dist ? ['--dist', opts.dist] : [])];
  const child = spawn(process.execPath, [...prof, ...process.execArgv, SERVER_MAIN, ...serverArgs], {
    // stdout (the webhook's log) to /dev/null; the port comes back on fd 3.
    stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
  });
  const portPipe = child.stdio[3] as NodeJS.ReadableStream;
  const port = await new Promise<number>((resolve, reject) => {
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
  const pid = child.pid!;
  return {
    kind,
    port,
    child,
    cpuMs: () => cpuSeconds(pid) * 1000,
    stop: () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve()).kill('SIGTERM'))),
  };
}
