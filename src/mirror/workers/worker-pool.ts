import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { urlOf } from '../http/connection-source.js';
import { ConnectionHandoff } from './connection-handoff.js';
import { PRIMARY_ADDRESS_ENV } from './handoff-messages.js';
import { RESTART_WINDOW_MS, restartDelay } from './worker-count.js';

/** After the grace period, workers still running get this much longer before they are killed. */
const KILL_AFTER_GRACE_MS = 5_000;

export interface WorkerPoolOptions {
  count: number;
  /** Where the primary listens (`mirror.listen`). */
  listen: string;
  /** Whether the workers serve HTTPS (for the URL the pool reports). */
  tls: boolean;
  /** How long a worker may take to finish its requests on SIGTERM (its `mirror.shutdownGrace`). */
  shutdownGraceMs: number;
  logger: Logger;
}

/**
 * The primary process's side of the mirror's workers: listens, forks `count` workers (node:cluster) and hands
 * each accepted connection to one of them (ConnectionHandoff; TLS is the workers'), replaces one that dies
 * (with a backoff when they keep dying), and on `stop` has them all finish their requests and exit.
 */
export class WorkerPool {
  private stopping = false;
  private readonly exits: number[] = [];
  private readonly restarts = new Set<NodeJS.Timeout>();
  private handoff: ConnectionHandoff | undefined;

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Listens and forks the workers; resolves with the URL once one is ready, fails when one exits before any was. */
  async start(): Promise<string> {
    let listening = false;
    let failed: ((err: Error) => void) | undefined;
    let readyOnce: (() => void) | undefined;
    const handoff = new ConnectionHandoff({
      listen: this.opts.listen,
      logger: this.opts.logger,
      onReady: (worker) => {
        this.opts.logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
        listening = true;
        readyOnce?.();
      },
    });
    let address: AddressInfo;
    try {
      address = await handoff.listen();
    } catch (err) {
      throw fail('CONFIG_INVALID', `cannot listen on ${this.opts.listen}: ${(err as Error).message}`);
    }
    this.handoff = handoff;
    const fork = (): void => handoff.attach(cluster.fork({ [PRIMARY_ADDRESS_ENV]: JSON.stringify(address) }));
    cluster.on('exit', (worker, code, signal) => {
      if (this.stopping) return;
      if (!listening) {
        this.stopping = true;
        this.killAll();
        failed?.(fail('CONFIG_INVALID', `worker ${worker.id} exited (${signal ?? `code ${code}`}) before the mirror listened; its log says why`));
        return;
      }
      const now = Date.now();
      this.exits.push(now);
      while (this.exits.length > 0 && now - this.exits[0]! > RESTART_WINDOW_MS) this.exits.shift();
      const delay = restartDelay(this.exits, now);
      this.opts.logger.error({ worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; replacing it');
      const timer = setTimeout(() => {
        this.restarts.delete(timer);
        if (!this.stopping) fork();
      }, delay);
      this.restarts.add(timer);
    });
    await new Promise<void>((resolve, reject) => {
      readyOnce = resolve;
      failed = reject;
      for (let i = 0; i < this.opts.count; i++) fork();
    });
    return urlOf(address, this.opts.tls);
  }

  /** Asks every worker to finish its requests and exit (SIGTERM); resolves once all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.restarts) clearTimeout(t);
    this.restarts.clear();
    const unbound = this.handoff?.close();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.process.kill('SIGTERM');
    const killer = setTimeout(() => this.killAll(), this.opts.shutdownGraceMs + KILL_AFTER_GRACE_MS);
    await Promise.all(exited);
    clearTimeout(killer);
    await unbound;
  }

  private killAll(): void {
    for (const w of Object.values(cluster.workers ?? {})) if (w && !w.isDead()) w.process.kill('SIGKILL');
  }
}
