import bcrypt from 'bcryptjs';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/common/errors.js';
import { isValidRepositoryPath } from '../../../src/reference/grammar.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, type PushedImage } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { rawRequest, type RawAnswer } from '../../helpers/raw-http.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';
import { rng } from '../../helpers/rng.js';

const cleanup = new Cleanup();
const logs = captureLogs('info');
let hub: HubFront;
let mirror: TestMirror;
let image: PushedImage;
let port: number;
let parent: string;
let storageRoot: string;
let trapPort: number;
let trapConnections = 0;

/** Error codes a client may see on the wire (the spec's and distribution's; mirror codes are mapped onto them). */
const WIRE_CODES = new Set(Object.keys(ERROR_CODES).filter((c) => !/^(UPSTREAM_|STORAGE_|CONFIG_|REVIEW_|CONTENT_TYPE|INTERNAL)/.test(c)));

/** Every file below `dir` with its size and mtime, skipping `skip` (the storage root). */
function snapshot(dir: string, skip: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (p === skip) continue;
    const st = statSync(p);
    out.push(`${p} ${st.isDirectory() ? 'dir' : st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) snapshot(p, skip, out);
  }
  return out;
}


interface FuzzCase {
  method: string;
  version: string;
  target: string;
  headers: string[];
  body?: string;
}

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number): boolean => r() < p;
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');
  const trap = `127.0.0.1:${trapPort}`;
  const names = [
    'library/alpine', 'alpine', 'docker.io/library/alpine', 'index.docker.io/library/alpine', 'LIBRARY/ALPINE',
    '..', '../..', 'library/../../etc', 'library/..', '.', 'a/./b', '%2e%2e', '%2e%2e%2f%2e%2e', 'library%2falpine', '..%2f..%2fetc',
    '%252e%252e', '/etc/passwd', '//etc/passwd', 'library//alpine', 'library\\..\\..\\etc', 'C:\\windows', '~root', '$HOME/x',
    'evil.example/x', 'evil.example:443/library/alpine', `${trap}/library/alpine`, `localhost:${trapPort}/x`, '[::1]:1/x', '169.254.169.254/latest',
    'a'.repeat(256), `${'a/'.repeat(200)}a`, 'x'.repeat(3000), 'lib\u0000rary/alpine', 'lib%00rary/alpine', 'ålpine/ünïcode', 'library/\u202ealpine',
    '𝕏/y', 'library/alpine\r\nx-injected: 1', '%E0%A4%A', '%', '%zz/x', 'a%ff%fe', 'library/alpine x', 'tmp/../..', 'blobs/sha256', 'repositories/docker.io', '_catalog',
  ];
  const refs = [
    '3.20', 'latest', '..', '.', '-bad', 'a'.repeat(129), `sha256:${hex(64)}`, `sha256:${hex(63)}`, `sha256:${hex(64).toUpperCase()}`, `sha512:${hex(128)}`,
    'sha256:../../etc', `sha256:${'0'.repeat(64)}`, 'x:y', '%2e%2e', 'tag%00', '\u00e9', `${image.digest}`,
  ];
  const digests = [image.config.digest, `sha256:${hex(64)}`, 'sha256:..', `md5:${hex(32)}`, '..', `sha256:${hex(64)}/../..`, '%2e%2e', `sha256:${hex(64)}%00`];
  const endpoint = (): string => {
    const name = pick(names);
    switch (Math.floor(r() * 8)) {
      case 0: return `/v2/${name}/manifests/${pick(refs)}`;
      case 1: return `/v2/${name}/blobs/${pick(digests)}`;
      case 2: return `/v2/${name}/tags/list`;
      case 3: return `/v2/${name}/referrers/${pick(digests)}`;
      case 4: return `/v2/${name}/blobs/uploads/${chance(0.5) ? hex(8) : ''}`;
      case 5: return pick(['/v2/', '/v2', '/V2/', '/v2/_catalog', '/healthz', '/readyz', '/metrics', '/', '*', '/token', '/../../etc/passwd', 'http://evil.example/v2/', `http://${trap}/v2/`, '/v2/../healthz', '//v2/', '/v2/%2e%2e/']);
      case 6: return `/${pick(names)}`;
      default: return `/v2/${name}/${pick(['manifests', 'blobs', 'tags', 'referrers', '_manifests', '_tags'])}/${pick([...refs, ...digests])}`;
    }
  };
  const query = (): string => {
    if (chance(0.5)) return '';
    const parts = [
      'ns=evil.example', `ns=${trap}`, `ns=localhost:${trapPort}`, 'ns=docker.io', 'ns=DOCKER.IO', 'ns=', 'ns=%00', 'ns=..%2f..',
      'n=-1', 'n=0', 'n=99999999999999999999', 'n=abc', 'last=../../etc', `last=${'z'.repeat(300)}`, 'artifactType=../../x', 'artifactType=a%0d%0ab',
      'a[b]=1', 'a[0]=1&a[1]=2', '__proto__=x', 'constructor[prototype][x]=1', 'ns=docker.io&ns=ghcr.io',
    ];
    const n = chance(0.1) ? 200 : 1 + Math.floor(r() * 3);
    const q = Array.from({ length: n }, () => pick(parts)).join('&');
    return `?${chance(0.03) ? q + '&x=' + 'y'.repeat(10_000) : q}`;
  };
  const headerSets = (): string[] => {
    const h: string[] = [];
    if (chance(0.4)) h.push(`Accept: ${pick([MediaTypes.dockerManifest, '*/*', 'x'.repeat(2000), Array(200).fill('a/b;q=0.1').join(','), 'application/vnd.oci.image.index.v1+json, ,,;;'])}`);
    if (chance(0.3)) h.push(`Range: ${pick(['bytes=0-10', 'bytes=-1', 'bytes=99999999999999999999-', 'bytes=5-1', 'bytes=0-1,2-3', 'items=0-1', 'bytes=abc'])}`);
    if (chance(0.25)) {
      const creds = chance(0.9) ? `fuzz:${pick(['right-password', 'wrong', ''])}` : `user${hex(4)}:${hex(8)}`;
      h.push(`Authorization: ${pick([
        `Basic ${Buffer.from(creds).toString('base64')}`, 'Basic', 'Basic !!!', `Basic ${Buffer.from('\u0000:\u0000').toString('base64')}`,
        `Bearer ${hex(40)}`, 'Negotiate abc', `Basic ${'A'.repeat(8000)}`, 'Basic YWxpY2U=',
      ])}`);
    }
    if (chance(0.1)) h.push(`X-Request-Id: ${pick(['ok-id', '../../x', 'x'.repeat(100), 'a b'])}`);
    if (chance(0.05)) h.push(`X-Big: ${'h'.repeat(20_000)}`);
    if (chance(0.05)) for (let i = 0; i < 150; i++) h.push(`X-Many-${i}: ${hex(8)}`);
    if (chance(0.05)) h.push(pick(['Content-Length: abc', 'Content-Length: 1, 2', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Bad Header: x', 'X-Nul: a\u0000b', ': empty']));
    if (chance(0.05)) h.push(`Host: ${pick(['evil.example', `127.0.0.1:${trapPort}`, '', 'a'.repeat(300)])}`);
    return h;
  };
  return (): FuzzCase => {
    const method = chance(0.75) ? pick(['GET', 'HEAD']) : pick(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'CONNECT', 'FOO', 'get', 'G\u0000T', 'GET /x']);
    const c: FuzzCase = { method, version: chance(0.02) ? pick(['HTTP/9.9', 'HTTP/1.0', 'HTTP/2.0', 'FOO']) : 'HTTP/1.1', target: endpoint() + query(), headers: headerSets() };
    if (chance(0.05)) c.body = pick(['{}', 'x'.repeat(70_000), '0\r\n\r\n']);
    return c;
  };
}

function encode(c: FuzzCase): Buffer {
  const lines = [`${c.method} ${c.target} ${c.version}`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...c.headers];
  if (c.body !== undefined && !c.headers.some((h) => /^(content-length|transfer-encoding)/i.test(h))) lines.push(`Content-Length: ${Buffer.byteLength(c.body)}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${c.body ?? ''}`, 'utf8');
}

function checkAnswer(c: FuzzCase, a: RawAnswer): string | undefined {
  if (a.hung) return 'no answer in time';
  if (a.status === 0) return c.method === 'CONNECT' ? undefined : 'connection closed without an answer';
  if (a.status >= 500 && a.status !== 502 && a.status !== 503) return `status ${a.status}`;
  if (a.status < 400 || c.method === 'HEAD') return undefined;
  let doc: { errors?: { code?: string }[] };
  try {
    doc = JSON.parse(a.body.toString('utf8')) as typeof doc;
  } catch {
    return `status ${a.status} without a JSON error envelope: ${a.body.toString('utf8').slice(0, 100)}`;
  }
  const code = doc.errors?.[0]?.code;
  if (!code || !WIRE_CODES.has(code)) return `status ${a.status} with code ${code}`;
  return undefined;
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'library/alpine', '3.20', { layers: [1024], format: 'docker', seed: 'hostile' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const trap = net.createServer((s) => {
    trapConnections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapPort = (trap.address() as net.AddressInfo).port;
  cleanup.add(() => new Promise<void>((resolve) => trap.close(() => resolve())));

  const dir = cleanup.add(await makeTempDir('mirrorgate-hostile-'));
  parent = dir.path;
  storageRoot = join(parent, 'storage');
  mkdirSync(join(parent, 'sibling', 'etc'), { recursive: true });
  writeFileSync(join(parent, 'sibling', 'etc', 'passwd'), 'root:x:0:0\n');
  const htpasswd = join(parent, 'htpasswd');
  writeFileSync(htpasswd, `fuzz:${bcrypt.hashSync('right-password', 4)}\n`);
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      logger: logs.logger,
      storage: { path: storageRoot, cleanup: async () => undefined },
      config: {
        mirror: {
          headersTimeout: '1s',
          auth: { htpasswd, anonymousRead: true },
          limits: { requestTimeout: '2s', idleTimeout: '10s' },
        },
      },
    }),
  );
  port = Number(new URL(mirror.url).port);
}, 120_000);

afterAll(() => cleanup.run());

describe('hostile clients', () => {
  it('answers 3000 generated hostile requests with a spec error or a valid answer, touches nothing outside storage, calls no unknown host, and stays up', async () => {
    const before = snapshot(parent, storageRoot);
    const next = generator(20_240_601);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const started = Date.now();
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < 3000 && failures.length < 20) {
        const c = next();
        i++;
        const answer = await rawRequest(port, encode(c), 5000);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const problem = checkAnswer(c, answer);
        if (problem) failures.push(`${problem}: ${JSON.stringify({ method: c.method, version: c.version, target: c.target.slice(0, 200), headers: c.headers.map((h) => h.slice(0, 80)) })}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(failures).toEqual([]);
    expect(Date.now() - started).toBeLessThan(90_000);
    // The mix really exercised both sides: valid answers and many kinds of refusal.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(20);
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThan(5);

    expect(trapConnections).toBe(0);
    for (const r of hub.requests) {
      const pathname = r.path.split('?')[0]!;
      expect(r.kind, r.path).not.toBe('other');
      expect(pathname, 'upstream path').not.toMatch(/\.\.|%|\\|\/\//);
      if (r.repo !== undefined) expect(isValidRepositoryPath(r.repo), r.repo).toBe(true);
    }
    console.log(`fuzz: ${i} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, ${hub.requests.length} upstream requests`);
    expect(snapshot(parent, storageRoot)).toEqual(before);
    for (const entry of readdirSync(storageRoot)) expect(['blobs', 'manifests', 'repositories', 'state', 'tmp']).toContain(entry);
    expect(logs.lines().filter((l) => l.msg === 'unexpected error')).toEqual([]);

    const base = await request(`${mirror.url}/v2/`);
    await base.body.dump();
    expect(base.statusCode).toBe(200);
    const manifest = await request(`${mirror.url}/v2/library/alpine/manifests/3.20`, { method: 'HEAD', headers: { accept: MediaTypes.dockerManifest } });
    await manifest.body.dump();
    expect(manifest.statusCode).toBe(200);
  }, 120_000);

  it('closes a connection whose headers trickle in slower than the headers timeout', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let closedAt = 0;
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => ((closedAt = Date.now()), resolve())));
    socket.on('error', () => undefined);
    const started = Date.now();
    socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    for (let k = 0; k < 40 && closedAt === 0; k++) {
      await sleep(200);
      if (!socket.destroyed) socket.write(`X-Slow-${k}: y\r\n`);
    }
    await closed;
    expect(closedAt - started).toBeLessThan(4000);
    if (received) expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('refuses a large body with 413 and closes without reading it', async () => {
    const answer = await rawRequest(port, `GET /v2/library/alpine/tags/list HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nabc`, 5000);
    expect(answer.hung).toBe(false);
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).toBe('close');
    expect((JSON.parse(answer.body.toString()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNSUPPORTED');
  });

  it('never serves content cached for one repository through another name (by digest, across upstreams)', async () => {
    const accept = MediaTypes.dockerManifest;
    const pulled = await request(`${mirror.url}/v2/library/alpine/manifests/3.20`, { headers: { accept } });
    await pulled.body.dump();
    expect(pulled.statusCode).toBe(200);
    const layer = image.layers[0]!.digest;
    const own = await request(`${mirror.url}/v2/library/alpine/blobs/${layer}`);
    await own.body.dump();
    expect(own.statusCode).toBe(200);
    // The upstream holds neither name: the cached copies are not theirs to read.
    for (const name of ['library/other', 'attacker/alpine', 'docker.io/library/alpinex']) {
      const blob = await request(`${mirror.url}/v2/${name}/blobs/${layer}`);
      expect((await blob.body.json()) as unknown, name).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
      expect(blob.statusCode).toBe(404);
      const manifest = await request(`${mirror.url}/v2/${name}/manifests/${image.digest}`, { headers: { accept } });
      expect((await manifest.body.json()) as unknown, name).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    }
  });

  it('refuses a push to a proxied repository with 403 and closes without reading the body', async () => {
    const answer = await rawRequest(port, `POST /v2/library/alpine/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nabc`, 5000);
    expect(answer.hung).toBe(false);
    expect(answer.status).toBe(403);
    expect(answer.headers.connection).toBe('close');
    expect((JSON.parse(answer.body.toString()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
  });

  it('answers requests the HTTP parser refuses with the spec envelope', async () => {
    const big = await rawRequest(port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    expect(JSON.parse(big.body.toString())).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
    const garbage = await rawRequest(port, 'HELLO\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.body.toString())).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
  });
});

describe('the cap on simultaneous upstream fetches', () => {
  it('answers 429 TOOMANYREQUESTS with Retry-After when every slot is busy and the queue is full', async () => {
    const capped = cleanup.add(
      await startMirror({ upstreams: { 'docker.io': hub.url }, config: { mirror: { limits: { upstreamFetches: 1, upstreamQueue: 0 } } } }),
    );
    hub.faults.push({ match: { kind: 'manifest' }, action: { type: 'delay', ms: 1500 } });
    const slow = request(`${capped.url}/v2/library/alpine/manifests/3.20`, { headers: { accept: MediaTypes.dockerManifest } });
    await sleep(300);
    const refused = await request(`${capped.url}/v2/library/alpine/tags/list`);
    const body = (await refused.body.json()) as { errors: { code: string }[] };
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(body.errors[0]!.code).toBe('TOOMANYREQUESTS');
    const first = await slow;
    await first.body.dump();
    expect(first.statusCode).toBe(200);
    // The slot is free again once the first fetch is done.
    const later = await request(`${capped.url}/v2/library/alpine/tags/list`);
    await later.body.dump();
    expect(later.statusCode).toBe(200);
  });
});
