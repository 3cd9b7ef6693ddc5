import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';

export interface TempDir {
  readonly path: string;
  /** Removes the directory and everything in it. Idempotent. */
  cleanup(): Promise<void>;
}

/** A fresh directory under the OS temp dir, e.g. `makeTempDir('mirrorgate-cache-')`. */
export async function makeTempDir(prefix = 'mirrorgate-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  let done = false;
  return {
    path,
    async cleanup() {
      if (done) return;
      done = true;
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** Something that can be cleaned up: a function, or an object with `stop()` or `cleanup()`. */
export type Cleanable = (() => unknown) | { stop(): unknown } | { cleanup(): unknown };

/**
 * A stack of clean-up actions run in reverse order of registration. Every action runs even when an earlier
 * one throws; the errors are reported together afterwards.
 */
export class Cleanup {
  #stack: Cleanable[] = [];

  /** Registers `item` and returns it, so `const reg = cleanup.add(await startDockerRegistry())` works. */
  add<T extends Cleanable>(item: T): T {
    this.#stack.push(item);
    return item;
  }

  get size(): number {
    return this.#stack.length;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.#stack.length > 0) {
      const item = this.#stack.pop() as Cleanable;
      try {
        if (typeof item === 'function') await item();
        else if ('stop' in item) await item.stop();
        else await item.cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} clean-up actions failed`);
  }
}

/**
 * A `Cleanup` wired to vitest: it runs after each test (`'each'`, the default) or after the file (`'all'`).
 * Call it at the top level of a test file or inside a `describe`.
 */
export function useCleanup(when: 'each' | 'all' = 'each'): Cleanup {
  const cleanup = new Cleanup();
  (when === 'each' ? afterEach : afterAll)(() => cleanup.run());
  return cleanup;
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). Another process can
 * take it before you bind it; callers that spawn servers should retry on EADDRINUSE.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the bound port'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
