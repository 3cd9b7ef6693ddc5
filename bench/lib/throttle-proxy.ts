import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy whose answers all share one bandwidth: a stand-in for the WAN link between a cluster and Docker Hub,
 * in front of a local registry. Requests go through untouched; bytes coming back are paced on one virtual clock
 * (each chunk books `size / bytesPerSecond` of it, first come first served), so several downloads at once split
 * the rate between them as on a real link. The source socket is paused while it is ahead of the clock, so nothing
 * piles up in memory.
 */

export interface ThrottleProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Bytes sent back to clients so far. */
  readonly bytes: number;
  stop(): Promise<void>;
}

/** How far ahead of the clock a source may run before it is paused (the pacing granularity). */
const SLACK_MS = 10;

export async function startThrottleProxy(target: string, bytesPerSecond: number): Promise<ThrottleProxy> {
  const { hostname, port } = new URL(target);
  let clock = 0; // ms (performance.now()) at which the link is free again
  let bytes = 0;
  const sockets = new Set<Socket>();

  /** Pipes `from` into `to`, pacing every chunk on the shared clock. */
  const paced = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      const now = performance.now();
      clock = Math.max(clock, now) + (chunk.length / bytesPerSecond) * 1000;
      bytes += chunk.length;
      // Written at once, but the source waits until the link has caught up with it.
      const writable = to.write(chunk);
      const ahead = clock - now;
      if (ahead > SLACK_MS || !writable) {
        from.pause();
        const resume = (): void => {
          if (!from.destroyed) from.resume();
        };
        const wait = Math.max(0, ahead - SLACK_MS);
        // Looked at when the timer fires: a `drain` that came meanwhile would otherwise be missed.
        const timer = setTimeout(() => (to.writableNeedDrain ? to.once('drain', resume) : resume()), wait);
        timer.unref();
      }
    });
    from.once('end', () => to.end());
  };

  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    paced(upstream, client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get bytes() {
      return bytes;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
