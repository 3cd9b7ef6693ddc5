import cluster, { type Worker } from 'node:cluster';
import type { Address } from 'node:cluster';
import { fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { RESTART_WINDOW_MS, restartDelay } from './worker-count.js';

/** After the grace period, workers still running get this much longer before they are killed. */
const KILL_AFTER_GRACE_MS = 5_000;

export interface WorkerPoolOptions {
  count: number;
  /** Whether the workers serve HTTPS (for the URL the pool reports). */
  tls: boolean;
  /** How long a worker may take to finish its requests on SIGTERM (its `mirror.shutdownGrace`). */
  shutdownGraceMs: number;
  logger: Logger;
}

/**
 * The primary process's side of the mirror's workers: forks `count` workers (node:cluster, which shares the
 * one listening socket among them, TLS included), replaces one that dies (with a backoff when they keep
 * dying), and on `stop` has them all finish their requests and exit.
 */
export class WorkerPool {
  private stopping = false;
  private readonly exits: number[] = [];
  private readonly restarts = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Forks the workers; resolves with the URL once one listens, fails when one exits before any listened. */
  start(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let listening = false;
      const onListening = (worker: Worker, address: Address): void => {
        this.opts.logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
        if (listening) return;
        listening = true;
        resolve(urlOf(address, this.opts.tls));
      };
      cluster.on('listening', onListening);
      cluster.on('exit', (worker, code, signal) => {
        if (this.stopping) return;
        if (!listening) {
          this.stopping = true;
          this.killAll();
          reject(fail('CONFIG_INVALID', `worker ${worker.id} exited (${signal ?? `code ${code}`}) before the mirror listened; its log says why`));
          return;
        }
        const now = Date.now();
        this.exits.push(now);
        while (this.exits.length > 0 && now - this.exits[0]! > RESTART_WINDOW_MS) this.exits.shift();
        const delay = restartDelay(this.exits, now);
        this.opts.logger.error({ worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; replacing it');
        const timer = setTimeout(() => {
          this.restarts.delete(timer);
          if (!this.stopping) cluster.fork();
        }, delay);
        this.restarts.add(timer);
      });
      for (let i = 0; i < this.opts.count; i++) cluster.fork();
    });
  }

  /** Asks every worker to finish its requests and exit (SIGTERM); resolves once all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.restarts) clearTimeout(t);
    this.restarts.clear();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.process.kill('SIGTERM');
    const killer = setTimeout(() => this.killAll(), this.opts.shutdownGraceMs + KILL_AFTER_GRACE_MS);
    await Promise.all(exited);
    clearTimeout(killer);
  }

  private killAll(): void {
    for (const w of Object.values(cluster.workers ?? {})) if (w && !w.isDead()) w.process.kill('SIGKILL');
  }
}

/** The URL clients reach the workers at (the wildcard addresses as loopback). */
function urlOf(address: Address, tls: boolean): string {
  const family = address.addressType;
  const raw = address.address ?? (family === 6 ? '::' : '0.0.0.0');
  const host = raw === '0.0.0.0' || raw === '::' || raw === '' ? '127.0.0.1' : family === 6 ? `[${raw}]` : raw;
  return `${tls ? 'https' : 'http'}://${host}:${address.port}`;
}
