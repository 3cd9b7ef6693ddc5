import { describe, expect, it } from 'vitest';
import { Singleflight } from '../../../src/mirror/proxy/singleflight.js';

/** A promise settled from outside, so a test decides when the operation finishes. */
function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Singleflight', () => {
  it('runs one operation for concurrent callers of a key; every waiter gets the real result', async () => {
    const flight = new Singleflight<{ body: string }>();
    const gate = deferred<{ body: string }>();
    let calls = 0;
    const op = (): Promise<{ body: string }> => {
      calls++;
      return gate.promise;
    };
    const waiters = Array.from({ length: 5 }, () => flight.do('blob:a', op));
    expect(calls).toBe(1);
    expect(flight.size).toBe(1);
    expect(flight.get('blob:a')).toBeDefined();
    const result = { body: 'the bytes' };
    gate.resolve(result);
    const got = await Promise.all(waiters);
    for (const g of got) expect(g).toBe(result);
    expect(flight.size).toBe(0);
    expect(flight.get('blob:a')).toBeUndefined();
  });

  it('a caller after the operation settled runs it again (results are not cached)', async () => {
    const flight = new Singleflight<number>();
    let calls = 0;
    expect(await flight.do('k', async () => ++calls)).toBe(1);
    expect(await flight.do('k', async () => ++calls)).toBe(2);
  });

  it('every waiter gets the real error; a failure is not remembered', async () => {
    const flight = new Singleflight<string>();
    const gate = deferred<string>();
    const waiters = [flight.do('k', () => gate.promise), flight.do('k', () => Promise.resolve('not called'))];
    const failure = new Error('upstream reset');
    gate.reject(failure);
    const settled = await Promise.allSettled(waiters);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect((s as PromiseRejectedResult).reason).toBe(failure);
    }
    expect(flight.size).toBe(0);
    expect(await flight.do('k', async () => 'second try')).toBe('second try');
  });

  it('keys are isolated: each runs its own operation, and one failing does not touch another', async () => {
    const flight = new Singleflight<string>();
    const a = deferred<string>();
    const b = deferred<string>();
    const pa = flight.do('a', () => a.promise);
    const pb = flight.do('b', () => b.promise);
    const pb2 = flight.do('b', () => Promise.resolve('not called'));
    expect(flight.size).toBe(2);
    a.reject(new Error('a failed'));
    await expect(pa).rejects.toThrow('a failed');
    expect(flight.size).toBe(1);
    expect(flight.get('b')).toBeDefined();
    b.resolve('b done');
    expect(await pb).toBe('b done');
    expect(await pb2).toBe('b done');
    expect(flight.size).toBe(0);
  });
});
