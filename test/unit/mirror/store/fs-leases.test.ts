import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../../../src/common/clock.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import { describeMetadataStoreContract } from '../../../helpers/storage-contract.js';
import { makeTempDir, useCleanup, type Cleanup } from '../../../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

describeMetadataStoreContract('FsMetadataStore shared by several processes', async () => {
  const dir = await makeTempDir('mg-shared-metadata-');
  const clock = new ManualClock();
  const storage = new FsStorage(path.join(dir.path, 'storage'), clock, { shared: true });
  await storage.prepare();
  return { store: storage.metadata, cleanup: () => dir.cleanup(), elapse: async (ms) => clock.advance(ms) };
});

interface Holder {
  child: ChildProcess;
  ask(line: string): Promise<Record<string, unknown>>;
}

/** test/helpers/lease-holder.ts in its own process, on the storage at `dir`. */
function holder(dir: string, cleanup: Cleanup): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/lease-holder.ts'), dir], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const answers: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else answers.push(line);
  });
  return {
    child,
    ask(line) {
      child.stdin!.write(`${line}\n`);
      return new Promise((resolve) => {
        const take = (l: string): void => resolve(JSON.parse(l) as Record<string, unknown>);
        const ready = answers.shift();
        if (ready !== undefined) take(ready);
        else waiting.push(take);
      });
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('FsMetadataStore leases across processes', () => {
  const cleanup = useCleanup();

  async function shared(): Promise<{ dir: string; store: FsStorage['metadata'] }> {
    const tmp = cleanup.add(await makeTempDir('mg-leases-'));
    const dir = path.join(tmp.path, 'storage');
    const storage = new FsStorage(dir, systemClock, { shared: true });
    await storage.prepare();
    return { dir, store: storage.metadata };
  }

  it('a lease held in another process is held here; its release frees it here', async () => {
    const { dir, store } = await shared();
    const other = holder(dir, cleanup);
    expect(await other.ask('acquire fetch:sha256:abc 60000')).toEqual({ acquired: true });
    expect(await store.acquireLease('fetch:sha256:abc', 'here', 60_000)).toBeUndefined();
    expect(await other.ask('release fetch:sha256:abc')).toEqual({ released: true });
    const mine = await store.acquireLease('fetch:sha256:abc', 'here', 60_000);
    expect(mine).toBeDefined();
    expect(await other.ask('acquire fetch:sha256:abc 60000')).toEqual({ acquired: false });
    await mine!.release();
  });

  it('renewals in another process keep the lease past its first ttl; expired, it is taken over and the old holder loses it', async () => {
    const { dir, store } = await shared();
    const other = holder(dir, cleanup);
    const ttl = 2000;
    // Renewals come every 600 ms against a 2 s ttl: a loaded machine may delay a round trip by over a second.
    expect(await other.ask(`acquire lifecycle ${ttl}`)).toEqual({ acquired: true });
    for (let i = 0; i < 4; i++) {
      await sleep(600);
      expect(await other.ask(`renew lifecycle ${ttl}`)).toEqual({ renewed: true });
    }
    expect(await store.acquireLease('lifecycle', 'here', ttl)).toBeUndefined();
    await sleep(ttl + 300);
    const mine = await store.acquireLease('lifecycle', 'here', 60_000);
    expect(mine).toBeDefined();
    expect(await other.ask(`renew lifecycle ${ttl}`)).toEqual({ renewed: false });
    await other.ask('release lifecycle');
    expect(await store.acquireLease('lifecycle', 'again', 60_000)).toBeUndefined();
    expect(await mine!.renew(60_000)).toBe(true);
  });

  it('the lease of a process that was killed is taken over at once, not after its ttl', async () => {
    const { dir, store } = await shared();
    const other = holder(dir, cleanup);
    expect(await other.ask('acquire fetch:sha256:def 600000')).toEqual({ acquired: true });
    const exited = new Promise((resolve) => other.child.once('exit', resolve));
    other.child.kill('SIGKILL');
    await exited;
    expect(await store.acquireLease('fetch:sha256:def', 'here', 60_000)).toBeDefined();
  });

  it('processes racing for the same names, free or expired, win each name exactly once', async () => {
    const { dir, store } = await shared();
    // Half the names start out held by a lease that has expired, so the race is a takeover race there.
    for (let i = 0; i < 40; i += 2) expect(await store.acquireLease(`race:${i}`, 'expired', 1)).toBeDefined();
    await sleep(10);
    const racers = [holder(dir, cleanup), holder(dir, cleanup), holder(dir, cleanup)];
    const results = await Promise.all(racers.map((r) => r.ask('race race: 40 60000')));
    const wins = new Map<number, number>();
    for (const r of results) for (const i of r.won as number[]) wins.set(i, (wins.get(i) ?? 0) + 1);
    for (let i = 0; i < 40; i++) expect(wins.get(i), `race:${i}`).toBe(1);
  });
});
