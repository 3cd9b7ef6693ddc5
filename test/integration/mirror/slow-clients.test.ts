import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { pushImage, type PushedImage } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { rawRequest } from '../../helpers/raw-http.js';
import { testCa, writeServingCert, type TestCa } from '../../helpers/test-certs.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * Clients that hold a connection slot by being slow or never finishing: each must lose its connection
 * within a bounded time of the timeout it broke, whatever it keeps sending, so the slots come back.
 */
const HEADERS_TIMEOUT = 1000;
const REQUEST_TIMEOUT = 2000;
const IDLE_TIMEOUT = 3000;
const STALL_TIMEOUT = 1000;
const MAX_CONNECTIONS = 8;
/** Timeouts are checked every quarter of the headers timeout; the 408 is flushed, then the socket destroyed. */
const SLACK = 1500;

const cleanup = new Cleanup();
const logs = captureLogs('info');
let mirror: TestMirror;
let port: number;
let image: PushedImage;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  // Larger than the loopback socket buffers, so a client that never reads stalls the response.
  image = await pushImage(registry.url, 'library/big', '1', { layers: [48 << 20], format: 'docker', seed: 'slow-clients' });
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': registry.url },
      logger: logs.logger,
      config: {
        mirror: {
          headersTimeout: `${HEADERS_TIMEOUT}ms`,
          limits: { requestTimeout: `${REQUEST_TIMEOUT}ms`, uploadStallTimeout: `${STALL_TIMEOUT}ms`, idleTimeout: `${IDLE_TIMEOUT}ms`, maxConnections: MAX_CONNECTIONS },
          hosted: { repositories: ['team/**'] },
        },
      },
    }),
  );
  port = Number(new URL(mirror.url).port);
}, 120_000);

afterAll(() => cleanup.run());

interface Held {
  /** Milliseconds from connect until the mirror closed the connection. */
  closed: Promise<number>;
  received(): string;
  stop(): void;
}

/**
 * A hostile client: sends `first`, then `next(k)` every 200 ms for as long as the connection lives. It keeps
 * its side open after the mirror ends its own (allowHalfOpen), so only the mirror can end the connection.
 */
function hold(targetPort: number, first: string, next: (k: number) => string | undefined): Held {
  const socket = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
  const opened = Date.now();
  let text = '';
  let k = 0;
  const tick = setInterval(() => {
    const bytes = next(k++);
    if (bytes !== undefined && socket.writable) socket.write(bytes);
  }, 200);
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) =>
    socket.on('close', () => {
      clearInterval(tick);
      resolve(Date.now() - opened);
    }),
  );
  socket.write(first);
  return {
    closed,
    received: () => text,
    stop: () => {
      clearInterval(tick);
      socket.destroy();
    },
  };
}

/** Whichever comes first: the connection closes (its time) or `ms` pass (Infinity). */
function within(held: Held, ms: number): Promise<number> {
  return Promise.race([held.closed, sleep(ms).then(() => Infinity)]);
}

async function healthz(): Promise<number> {
  return (await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2000)).status;
}

describe('slow clients', () => {
  it('destroys a connection that keeps trickling header lines after its 408', async () => {
    const held = hold(port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n', (k) => `X-Slow-${k}: y\r\n`);
    try {
      expect(await within(held, HEADERS_TIMEOUT + SLACK + 3000)).toBeLessThan(HEADERS_TIMEOUT + SLACK);
      expect(held.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(held.received()).toContain('"code":"UNSUPPORTED"');
    } finally {
      held.stop();
    }
  });

  it('never passes a request whose headers complete after the 408 to the routes', async () => {
    const late = (k: number): string | undefined => (k < 8 ? `X-Slow-${k}: y\r\n` : k === 8 ? '\r\nGET /readyz?late=2 HTTP/1.1\r\nHost: x\r\n\r\n' : undefined);
    const held = hold(port, 'GET /readyz?late=1 HTTP/1.1\r\nHost: x\r\n', late);
    try {
      await within(held, HEADERS_TIMEOUT + SLACK + 3000);
      await sleep(300);
      expect(held.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(logs.text()).not.toContain('late=');
    } finally {
      held.stop();
    }
  });

  it('destroys a connection that trickles a request body past the request timeout, even after the answer', async () => {
    const held = hold(port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n', () => 'x');
    try {
      expect(await within(held, REQUEST_TIMEOUT + SLACK + 3000)).toBeLessThan(REQUEST_TIMEOUT + SLACK);
    } finally {
      held.stop();
    }
  });

  it('destroys a push whose body stalls, and lets a steady push take longer than the request timeout', async () => {
    const start = await request(`${mirror.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    const location = String(start.headers.location);
    const held = hold(port, `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n`, () => 'x'.repeat(100));
    try {
      expect(await within(held, 2 * STALL_TIMEOUT + SLACK + 3000)).toBeLessThan(2 * STALL_TIMEOUT + SLACK);
    } finally {
      held.stop();
    }
    // 4 MiB sent in 256 KiB pieces over about 3 s: slower in all than the request timeout, never stalled.
    const piece = Buffer.alloc(256 * 1024, 7);
    async function* steady(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 16; i++) {
        yield piece;
        await sleep(190);
      }
    }
    const other = await request(`${mirror.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    await other.body.dump();
    const patched = await request(`${mirror.url}${String(other.headers.location)}`, { method: 'PATCH', body: Readable.from(steady()), headers: { 'content-type': 'application/octet-stream' } });
    await patched.body.dump();
    expect(patched.statusCode).toBe(202);
    expect(patched.headers.range).toBe(`0-${16 * piece.length - 1}`);
  });

  it('destroys a connection that keeps sending after the parser refused its request', async () => {
    const held = hold(port, 'HELLO\r\n\r\n', () => 'more garbage\r\n');
    try {
      expect(await within(held, SLACK + 3000)).toBeLessThan(SLACK);
      expect(held.received()).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      held.stop();
    }
  });

  it('destroys a connection that never reads its response once its writes have stalled for the idle timeout', async () => {
    const layer = image.layers[0]!;
    const warm = await request(`${mirror.url}/v2/library/big/blobs/${layer.digest}`);
    await warm.body.dump();
    expect(warm.statusCode).toBe(200);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.pause(); // never read: the mirror's writes stall once the socket buffers are full
    socket.write(`GET /v2/library/big/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
    try {
      // The kernel keeps taking bytes for a while after the client stops reading (its buffers grow), so
      // the idle clock starts some time after the request: allow it twice.
      await sleep(2 * IDLE_TIMEOUT + SLACK);
      // A client that does not read cannot see the close; reading now drains what was sent before it.
      let received = 0;
      const ended = new Promise<boolean>((resolve) => {
        socket.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 3000);
      });
      socket.on('data', (c: Buffer) => (received += c.length));
      socket.resume();
      expect(await ended).toBe(true);
      expect(received).toBeLessThan(layer.size);
    } finally {
      socket.destroy();
    }
  }, 30_000);

  it(`gives every slot back: with ${MAX_CONNECTIONS} clients trickling headers at the connection cap, /healthz answers after the headers timeout`, async () => {
    const attackers = Array.from({ length: MAX_CONNECTIONS }, () => hold(port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n', (k) => `X-Slow-${k}: y\r\n`));
    try {
      await sleep(200);
      expect(await healthz()).toBe(0); // every slot taken: the connection is dropped at once
      const times = await Promise.all(attackers.map((a) => within(a, HEADERS_TIMEOUT + SLACK + 3000)));
      expect(Math.max(...times)).toBeLessThan(HEADERS_TIMEOUT + SLACK);
      expect(await healthz()).toBe(200);
    } finally {
      for (const a of attackers) a.stop();
    }
  });

  it('destroys a connection that asks for CONNECT and keeps sending', async () => {
    const held = hold(port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', () => 'x');
    try {
      expect(await within(held, SLACK + 3000)).toBeLessThan(SLACK);
      expect(held.received()).toMatch(/^HTTP\/1\.1 405 /);
    } finally {
      held.stop();
    }
  });
});

describe('slow TLS clients', () => {
  let tlsPort: number;
  let ca: TestCa;

  beforeAll(async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-slow-tls-'));
    ca = testCa();
    const serving = await writeServingCert(dir.path, ca);
    const tlsMirror = cleanup.add(
      await startMirror({
        upstreams: { 'docker.io': 'http://127.0.0.1:9' },
        config: { mirror: { tls: { cert: serving.cert, key: serving.key }, headersTimeout: `${HEADERS_TIMEOUT}ms`, limits: { requestTimeout: `${REQUEST_TIMEOUT}ms`, maxConnections: MAX_CONNECTIONS } } },
      }),
    );
    tlsPort = Number(new URL(tlsMirror.url).port);
  });

  /** Status of GET /healthz over a fresh TLS connection (0: no answer). */
  function tlsHealthz(): Promise<number> {
    return new Promise((resolve) => {
      let text = '';
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: ca.cert }, () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      const done = (): void => {
        clearTimeout(timer);
        s.destroy();
        resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0));
      };
      const timer = setTimeout(done, 2000);
      s.on('data', (c: Buffer) => (text += c.toString('latin1')));
      s.on('close', done);
      s.on('error', done);
    });
  }

  it('gives back the slots of clients that never complete the TLS handshake, silent or trickling', async () => {
    // Half say nothing, half send the start of a ClientHello a byte at a time.
    const attackers = Array.from({ length: MAX_CONNECTIONS }, (_, i) => (i % 2 === 0 ? hold(tlsPort, '', () => undefined) : hold(tlsPort, '\x16', () => '\x03')));
    try {
      await sleep(200);
      expect(await tlsHealthz()).toBe(0); // every slot taken
      await sleep(HEADERS_TIMEOUT + SLACK);
      expect(await tlsHealthz()).toBe(200);
    } finally {
      for (const a of attackers) a.stop();
    }
  });
});
