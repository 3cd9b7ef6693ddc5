import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, makeTempDir } from './tmp.js';
import { reapOnExit } from './reap-children.js';

/**
 * Debian's real `redis-server` on 127.0.0.1, in a temp directory, without persistence (`--save ''`,
 * `--appendonly no`) unless a test asks for a snapshot with `save()`. It can be stopped, started again on
 * the same port (empty, or from the snapshot), paused (SIGSTOP: a hung server) and flushed.
 */
export interface TestRedis {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** FLUSHALL: what a restart without persistence does to the data, with the server staying up. */
  flushAll(): Promise<void>;
  /** SAVE: writes a snapshot that the next `start()` loads. */
  save(): Promise<void>;
  /** Runs one command on a connection of its own. */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
  /** SIGTERM and wait for the exit (no snapshot is written). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stops it and removes its directory. */
  cleanup(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';


export async function startRedis(): Promise<TestRedis> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} not found: run scripts/setup.sh (it installs Debian's redis-server)`);
  const dir = await makeTempDir('mirrorgate-redis-');
  let port = 0;
  let child: ChildProcess | undefined;

  const spawnOnce = async (): Promise<'ready' | 'in-use'> => {
    const proc = spawn(
      BINARY,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'notice'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    reapOnExit(proc);
    let out = '';
    const result = await new Promise<'ready' | 'in-use' | Error>((resolve) => {
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) resolve('ready');
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => resolve(out.includes('Address already in use') ? 'in-use' : new Error(`redis-server exited (${code}): ${out.slice(-2000)}`)));
      setTimeout(() => resolve(new Error(`redis-server did not start in 10 s: ${out.slice(-2000)}`)), 10_000).unref();
    });
    if (result instanceof Error) {
      proc.kill('SIGKILL');
      throw result;
    }
    if (result === 'ready') child = proc;
    return result;
  };

  const start = async (fixedPort: boolean): Promise<void> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (!fixedPort) port = await freePort();
      if ((await spawnOnce()) === 'ready') return;
      await sleep(100);
    }
    throw new Error(`redis-server could not bind port ${port}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const command = async (name: string, ...args: (string | number)[]): Promise<unknown> => {
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(name, ...args);
    } finally {
      client.disconnect();
    }
  };

  await start(false);
  const redis: TestRedis = {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    flushAll: async () => {
      await command('FLUSHALL');
    },
    save: async () => {
      await command('SAVE');
    },
    command,
    stop,
    start: () => start(true),
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    cleanup: async () => {
      await stop();
      await dir.cleanup();
    },
  };
  return redis;
}
