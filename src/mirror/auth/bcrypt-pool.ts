import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { Semaphore } from '../limits/semaphore.js';
import type { PasswordVerifier } from './authenticator.js';

export interface BcryptPoolOptions {
  /** Worker threads, which is also the most checks running at once. */
  threads: number;
  /** Checks waiting for a thread; one more is refused at once with 429. */
  maxQueued: number;
  /** Longest wait for a thread before 429. */
  queueTimeoutMs: number;
  logger: Logger;
}

/** bcryptjs's CommonJS build, loaded by path inside each worker. */
const BCRYPTJS = createRequire(import.meta.url).resolve('bcryptjs');

/**
 * The worker's whole program. Plain JavaScript evaluated as a script, so the same code runs from the compiled
 * build and from TypeScript sources under test runners, which have no loader inside worker threads.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptjs);
parentPort.on('message', ({ password, hash }) => {
  let reply;
  try {
    reply = { ok: bcrypt.compareSync(password, hash) };
  } catch (err) {
    reply = { error: String((err && err.message) || err) };
  }
  parentPort.postMessage(reply);
});
`;

type Reply = { ok: boolean } | { error: string };

interface Job {
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

/**
 * bcrypt checks on a few worker threads, so that a flood of wrong passwords costs those threads' CPU and
 * never the event loop: health probes and requests whose credentials are already verified are answered
 * while it runs. Threads start when first needed and are replaced when one dies. At most `threads` checks
 * run at once (one per thread); up to `maxQueued` wait, beyond that TOOMANYREQUESTS.
 */
export class BcryptPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly gate: Semaphore;
  private closed = false;

  constructor(private readonly opts: BcryptPoolOptions) {
    this.gate = new Semaphore({ max: opts.threads, maxQueued: opts.maxQueued, queueTimeoutMs: opts.queueTimeoutMs, what: 'too many password checks in progress' });
  }

  /** Live worker threads (idle or busy). */
  get threads(): number {
    return this.idle.length + this.busy.size;
  }

  /** Checks a password against a bcrypt hash on a worker thread. */
  readonly verify: PasswordVerifier = (password, hash) => this.gate.run(() => this.onThread(password, hash));

  /** Stops every thread; checks in progress are refused with UNAVAILABLE. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }

  /** Runs one check; the gate guarantees a thread is free or may be started. */
  private onThread(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new MirrorgateError('UNAVAILABLE', 'shutting down'));
    const worker = this.idle.pop() ?? this.spawn();
    return new Promise<boolean>((resolve, reject) => {
      this.busy.set(worker, { resolve, reject });
      worker.postMessage({ password, hash });
    });
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs: BCRYPTJS }, name: 'bcrypt' });
    // The threads never keep the process alive: the server does, while it listens.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      if (!this.closed) this.idle.push(worker);
      if ('error' in reply) job?.reject(new Error(`bcrypt check failed: ${reply.error}`));
      else job?.resolve(reply.ok);
    });
    worker.on('error', (err) => this.opts.logger.error({ err }, 'password check thread failed'));
    worker.on('exit', () => {
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      job?.reject(this.closed ? new MirrorgateError('UNAVAILABLE', 'shutting down') : new Error('password check thread exited'));
    });
    return worker;
  }
}
