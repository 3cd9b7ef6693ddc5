/**
 * The servers the webhook bench loads, each in its own process (this file run with `--serve KIND`), so the load
 * generator's work and garbage collection do not land in their latency and their CPU can be read from /proc:
 *
 * - `webhook`: mirrorgate's webhook as `mirrorgate webhook` runs it (info logging to stdout, default metrics);
 *   stdout is /dev/null here.
 * - `floor`: the least any webhook that reads the pod must do: read the body, `JSON.parse` it, answer
 *   `allowed` with the request's uid.
 * - `constant`: reads and drops the body, answers a constant AdmissionReview (TLS and HTTP only).
 *
 * All three use the same certificate, TLS minimum version and keep-alive timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/common/clock.js';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { configSchema } from '../../src/config/schema.js';
import { ConfigStore } from '../../src/webhook/config-store.js';
import { WebhookMetrics } from '../../src/webhook/metrics.js';
import { startWebhook } from '../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../src/webhook/tls-source.js';

export const SERVER_KINDS = ['webhook', 'floor', 'constant'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export interface ServerOptions {
  /** The webhook's log level: `info` as deployed, `silent` to see what logging costs. */
  logLevel: string;
  /** The uid the constant server answers with (the fixture's, so the client's check passes). */
  uid: string;
  /** Write V8 CPU profiles of this server into DIR/KIND when it exits (see `mainThreadProfile`). */
  cpuProfDir?: string;
}

export interface SpawnedServer {
  kind: ServerKind;
  port: number;
  child: ChildProcess;
  /** User + system CPU time of the process so far, in milliseconds (from /proc). */
  cpuMs(): number;
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);
const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuMsOf(pid: number): number {
  // Fields after the command name (which may hold spaces, hence the last ')'): utime is 14th, stime 15th overall.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

const ADMISSION = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' } as const;

async function serve(kind: ServerKind, certDir: string, logLevel: string, uid: string): Promise<number> {
  const cert = readFileSync(path.join(certDir, 'tls.crt'), 'utf8');
  const key = readFileSync(path.join(certDir, 'tls.key'), 'utf8');
  if (kind === 'webhook') {
    const config = configSchema.parse({ webhook: { mirrorProbe: { enabled: false } } });
    // Logs go to stdout, as deployed; the bench points the child's stdout at /dev/null.
    const logger = logLevel === 'silent' ? silentLogger() : createLogger({ level: logLevel });
    const metrics = new WebhookMetrics({ defaultMetrics: true });
    const webhook = await startWebhook({
      configStore: new ConfigStore({}, { logger, metrics }, config),
      logger,
      clock: systemClock,
      metrics,
      listen: { host: '127.0.0.1', port: 0 },
      tls: new MemoryTlsSource({ cert, key }),
      health: { reachable: () => true },
    });
    return webhook.port;
  }
  // The constant server echoes the uid it was started with: the bench's fixture's.
  const constant = JSON.stringify({ ...ADMISSION, response: { uid, allowed: true } });
  const server =
    kind === 'floor'
      ? createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
            const answer = JSON.stringify({ ...ADMISSION, response: { uid: review.request.uid, allowed: true } });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
            res.end(answer);
          });
        })
      : createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(constant) });
            res.end(constant);
          });
        });
  server.keepAliveTimeout = 100_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** The main thread's profile among those a server wrote into DIR/KIND: the one with the most samples, the largest file. */
export function mainThreadProfile(cpuProfDir: string, kind: ServerKind): string | undefined {
  const dir = path.join(cpuProfDir, kind);
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Starts `--serve KIND` as a child process; resolves once it listens. */
export async function spawnServer(kind: ServerKind, certDir: string, opts: ServerOptions): Promise<SpawnedServer> {
  // One directory per server: every thread (tsx's loader runs in one) writes its own profile.
  const prof = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(opts.cpuProfDir, kind)] : [];
  const child = spawn(process.execPath, [...prof, ...process.execArgv, SELF, '--serve', kind, '--cert-dir', certDir, '--log', opts.logLevel, '--uid', opts.uid], {
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
    cpuMs: () => cpuMsOf(pid),
    stop: () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve()).kill('SIGTERM'))),
  };
}

if (process.argv[1] === SELF) {
  const args = process.argv.slice(2);
  const opt = (name: string): string => args[args.indexOf(name) + 1] ?? '';
  const kind = opt('--serve') as ServerKind;
  if (!SERVER_KINDS.includes(kind)) throw new Error(`--serve ${SERVER_KINDS.join('|')}`);
  serve(kind, opt('--cert-dir'), opt('--log') || 'info', opt('--uid')).then(
    (port) => {
      writeSync(3, `PORT ${port}\n`);
      // Exit cleanly when the parent is done, so `--cpu-prof` can write the profile.
      process.once('SIGTERM', () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`bench server ${kind}: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
