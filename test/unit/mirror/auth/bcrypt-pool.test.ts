import bcrypt from 'bcryptjs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/common/logger.js';
import { BcryptPool } from '../../../../src/mirror/auth/bcrypt-pool.js';
import { useCleanup } from '../../../helpers/tmp.js';

const cleanup = useCleanup();

function pool(opts: { threads?: number; maxQueued?: number } = {}): BcryptPool {
  const p = new BcryptPool({ threads: opts.threads ?? 2, maxQueued: opts.maxQueued ?? 16, queueTimeoutMs: 10_000, logger: silentLogger() });
  cleanup.add(() => p.close());
  return p;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
  return 'none';
}

describe('BcryptPool', () => {
  it('checks passwords on worker threads, starting them only when needed', async () => {
    const p = pool();
    expect(p.threads).toBe(0);
    const hash = bcrypt.hashSync('right', 4);
    expect(await p.verify('right', hash)).toBe(true);
    expect(await p.verify('wrong', hash)).toBe(false);
    expect(p.threads).toBe(1);
    await Promise.all([p.verify('a', hash), p.verify('b', hash), p.verify('c', hash)]);
    expect(p.threads).toBe(2);
  });

  it('keeps the event loop free while it checks', async () => {
    const p = pool();
    const hash = bcrypt.hashSync('right', 11);
    const started = performance.now();
    bcrypt.compareSync('guess', hash);
    const oneCheckMs = performance.now() - started; // what one check would block the loop for
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    await Promise.all(Array.from({ length: 4 }, (_, i) => p.verify(`guess${i}`, hash)));
    delay.disable();
    expect(delay.max / 1e6).toBeLessThan(oneCheckMs / 2);
  });

  it('runs at most `threads` checks at once, queues a bounded number, and refuses the rest with 429', async () => {
    const p = pool({ threads: 2, maxQueued: 3 });
    const hash = bcrypt.hashSync('right', 8);
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => codeOf(p.verify(`guess${i}`, hash))));
    expect(codes.filter((c) => c === 'none')).toHaveLength(5);
    expect(codes.filter((c) => c === 'TOOMANYREQUESTS')).toHaveLength(3);
    expect(p.threads).toBe(2);
  });

  it('rejects a check bcrypt cannot run, and keeps working', async () => {
    const p = pool({ threads: 1 });
    await expect(p.verify('x', `$2c$04$${'a'.repeat(53)}`)).rejects.toThrow(/bcrypt check failed: Invalid salt revision/);
    expect(await p.verify('right', bcrypt.hashSync('right', 4))).toBe(true);
  });

  it('refuses checks in progress and later ones once closed', async () => {
    const p = pool({ threads: 1 });
    const pending = p.verify('guess', bcrypt.hashSync('right', 12));
    await new Promise((r) => setTimeout(r, 50));
    await p.close();
    expect(await codeOf(pending)).toBe('UNAVAILABLE');
    expect(await codeOf(p.verify('guess', bcrypt.hashSync('right', 4)))).toBe('UNAVAILABLE');
    expect(p.threads).toBe(0);
  });
});
