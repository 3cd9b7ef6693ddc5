import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/common/errors.js';
import { blobFile, contentOnDisk, tempFiles } from '../../helpers/cache-disk.js';
import { runCli, type CliProcess } from '../../helpers/cli-process.js';
import { generateBytes, MediaTypes, sha256 } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { rawRequest } from '../../helpers/raw-http.js';
import { registryClient, type Call, type RegistryAnswer } from '../../helpers/registry-client.js';
import { Cleanup, freePort, makeTempDir, type TempDir } from '../../helpers/tmp.js';

/**
 * Faults during pushes: a client that goes away mid-chunk, two clients pushing the same blob at once, the
 * mirror process killed (-9) during an upload and during manifest pushes, a disk that fills up during an
 * upload, and hostile names, ids, digests and ranges on every push route. Each ends in a spec answer (never
 * a 500), nothing half-visible, and an upload that is either resumable where its status says or gone.
 */
const cleanup = new Cleanup();
const logs = captureLogs('info');
const HOSTED = { mirror: { hosted: { repositories: ['team/**'] } } };
/** Hosted names never reach an upstream; this one refuses connections anyway. */
const NO_UPSTREAM = { 'docker.io': 'http://127.0.0.1:9' };
const OCTET = { 'content-type': 'application/octet-stream' };
let mirror: TestMirror;
let call: Call;

const location = (r: RegistryAnswer): string => {
  expect(r.header('location'), `Location on ${r.status} ${r.body.toString().slice(0, 200)}`).toBeTruthy();
  return r.header('location')!;
};
/** The offset an upload's status reports (bytes stored), from `Range: 0-<last>`. */
const offsetOf = (r: RegistryAnswer): number => {
  const m = /^0-(\d+)$/.exec(r.header('range') ?? '');
  expect(m, `Range ${r.header('range')}`).not.toBeNull();
  return Number(m![1]) + 1;
};
const unexpectedErrors = (): string[] => logs.lines().filter((l) => l.msg === 'unexpected error').map((l) => JSON.stringify(l).slice(0, 300));

/** Sends PATCH headers announcing `total` bytes and the first `sent` of `bytes`, then drops the connection. */
async function halfPatch(port: number, path: string, bytes: Buffer, sent: number, opts: { range?: string; waitMs?: number } = {}): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const range = opts.range ? `Content-Range: ${opts.range}\r\n` : '';
  socket.write(`PATCH ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n${range}Content-Length: ${bytes.length}\r\n\r\n`);
  await new Promise<void>((resolve) => socket.write(bytes.subarray(0, sent), () => resolve()));
  await sleep(opts.waitMs ?? 300);
  return socket;
}

/** Finishes an upload from where its status says it stands; the blob must then read back whole. */
async function resumeAndFinish(c: Call, loc: string, bytes: Buffer): Promise<void> {
  const status = await c('GET', loc);
  expect(status.status).toBe(204);
  const offset = status.header('range') === '0-0' ? 0 : offsetOf(status);
  const rest = bytes.subarray(offset);
  const patch = await c('PATCH', location(status), { headers: { ...OCTET, 'content-range': `${offset}-${bytes.length - 1}` }, body: rest });
  expect(patch.status).toBe(202);
  const done = await c('PUT', location(patch), { query: { digest: sha256(bytes) }, headers: OCTET });
  expect(done.status).toBe(201);
  const back = await c('GET', location(done));
  expect(sha256(back.body)).toBe(sha256(bytes));
}

beforeAll(async () => {
  mirror = cleanup.add(await startMirror({ upstreams: NO_UPSTREAM, logger: logs.logger, config: HOSTED }));
  call = registryClient(mirror.url);
}, 60_000);

afterAll(() => cleanup.run());

describe('a client that goes away', () => {
  it('mid-PATCH: the upload stays, resumable at the offset its status reports; the blob is not visible until closed', async () => {
    const bytes = generateBytes('gone-mid-patch', 5 * 1024 * 1024 + 123);
    const loc = location(await call('POST', '/v2/team/gone/blobs/uploads/'));
    const socket = await halfPatch(Number(new URL(mirror.url).port), loc, bytes, Math.floor(bytes.length / 2));
    socket.destroy();
    const status = await call('GET', loc);
    expect(status.status).toBe(204);
    const offset = offsetOf(status);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(Math.floor(bytes.length / 2));
    // The bytes stored are the ones sent, in order: resuming there gives the right blob.
    expect((await call('GET', `/v2/team/gone/blobs/${sha256(bytes)}`)).status).toBe(404);
    // Resending from the start is out of order now.
    expect((await call('PATCH', loc, { headers: { ...OCTET, 'content-range': `0-${bytes.length - 1}` }, body: bytes })).status).toBe(416);
    await resumeAndFinish(call, loc, bytes);
    expect(unexpectedErrors()).toEqual([]);
  });

  it('mid-PUT of the last chunk: the upload stays resumable, nothing is committed', async () => {
    const bytes = generateBytes('gone-mid-put', 3 * 1024 * 1024);
    const loc = location(await call('POST', '/v2/team/gone/blobs/uploads/'));
    const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(mirror.url).port) });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PUT ${loc}?digest=${sha256(bytes)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`);
    socket.write(bytes.subarray(0, 2 * 1024 * 1024));
    await sleep(300);
    socket.destroy();
    expect((await call('GET', `/v2/team/gone/blobs/${sha256(bytes)}`)).status).toBe(404);
    await resumeAndFinish(call, loc, bytes);
    expect(unexpectedErrors()).toEqual([]);
  });
});

describe('two clients pushing the same blob at once', () => {
  it('in sessions of one repository and of two: every push succeeds, the blob is stored once, no temp file is left', async () => {
    const bytes = generateBytes('same-blob', 6 * 1024 * 1024 + 7);
    const digest = sha256(bytes);
    const repos = ['team/same', 'team/same', 'team/same-too'];
    const locs = await Promise.all(repos.map(async (r) => location(await call('POST', `/v2/${r}/blobs/uploads/`))));
    const half = 3 * 1024 * 1024;
    const first = await Promise.all(locs.map((l) => call('PATCH', l, { headers: { ...OCTET, 'content-range': `0-${half - 1}` }, body: bytes.subarray(0, half) })));
    expect(first.map((r) => r.status)).toEqual([202, 202, 202]);
    const done = await Promise.all(first.map((r) => call('PUT', location(r), { query: { digest }, headers: OCTET, body: bytes.subarray(half) })));
    expect(done.map((r) => r.status)).toEqual([201, 201, 201]);
    // And two single-request pushes racing those commits' successors.
    const mono = await Promise.all(['team/mono-a', 'team/mono-b'].map((r) => call('POST', `/v2/${r}/blobs/uploads/`, { query: { digest }, headers: OCTET, body: bytes })));
    expect(mono.map((r) => r.status)).toEqual([201, 201]);
    for (const r of ['team/same', 'team/same-too', 'team/mono-a', 'team/mono-b']) expect(sha256((await call('GET', `/v2/${r}/blobs/${digest}`)).body)).toBe(digest);
    expect([...contentOnDisk(mirror.storage.path, 'blobs').entries()].filter(([d]) => d === digest)).toEqual([[digest, bytes.length]]);
    expect(tempFiles(mirror.storage.path)).toEqual([]);
  });
});

describe('hostile input on the push routes', () => {
  const WIRE = new Set(Object.keys(ERROR_CODES));
  const D = sha256('hostile');
  const cases: [string, string, string?][] = [
    // Names: traversal, encoded slashes, nulls, registry-looking names, too long.
    ['POST', '/v2/team/../etc/blobs/uploads/'],
    ['POST', '/v2/team/%2e%2e/blobs/uploads/'],
    ['POST', '/v2/team%2f..%2fx/blobs/uploads/'],
    ['POST', '/v2/team/a%00b/blobs/uploads/'],
    ['POST', '/v2/Team/App/blobs/uploads/'],
    ['POST', `/v2/team/${'a'.repeat(300)}/blobs/uploads/`],
    ['PUT', '/v2/team/../../manifests/v1'],
    ['DELETE', `/v2/team/..%2f..%2f/blobs/${D}`],
    // Upload ids: traversal, huge, not hex, another repository's shape.
    ['GET', '/v2/team/app/blobs/uploads/..'],
    ['PATCH', '/v2/team/app/blobs/uploads/../../state/uploads/x'],
    ['PUT', `/v2/team/app/blobs/uploads/${'f'.repeat(5000)}?digest=${D}`],
    ['DELETE', `/v2/team/app/blobs/uploads/${'0'.repeat(31)}Z`],
    ['GET', '/v2/team/app/blobs/uploads/%2e%2e%2fx'],
    ['PATCH', `/v2/team/app/blobs/uploads/${'a'.repeat(32)}`],
    // Digests: malformed, unknown algorithms, traversal.
    ['POST', '/v2/team/app/blobs/uploads/?digest=sha256:../../etc/passwd'],
    ['POST', `/v2/team/app/blobs/uploads/?digest=md5:${'a'.repeat(32)}`],
    ['POST', `/v2/team/app/blobs/uploads/?digest=${D}&digest=${D}`],
    ['POST', '/v2/team/app/blobs/uploads/?mount=sha256:..&from=team/other'],
    ['POST', `/v2/team/app/blobs/uploads/?mount=${D}&from=../../etc`],
    ['POST', `/v2/team/app/blobs/uploads/?mount=${D}&from=evil.example/x`],
    ['POST', `/v2/team/app/blobs/uploads/?mount=${D}&from=%2e%2e%2fteam`],
    ['DELETE', '/v2/team/app/blobs/sha256:..'],
    ['DELETE', `/v2/team/app/blobs/sha256:${'A'.repeat(64)}`],
    ['PUT', '/v2/team/app/manifests/sha256:..'],
    ['PUT', `/v2/team/app/manifests/${'t'.repeat(200)}`],
    ['DELETE', '/v2/team/app/manifests/..'],
    ['DELETE', '/v2/team/app/manifests/-x'],
    ['GET', '/v2/team/app/manifests/..%2f..'],
  ];

  it('answers every case with a spec error (or a plain upload for a mount it cannot do), never a 500, and writes nothing outside the storage', async () => {
    const port = Number(new URL(mirror.url).port);
    for (const [method, target] of cases) {
      const body = method === 'PUT' || method === 'PATCH' || method === 'POST' ? '{"schemaVersion":2}' : '';
      const a = await rawRequest(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${MediaTypes.ociManifest}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      expect(a.status, `${method} ${target}`).toBeGreaterThanOrEqual(200);
      expect(a.status, `${method} ${target}`).toBeLessThan(500);
      if (a.status >= 400) expect(WIRE.has((JSON.parse(a.body.toString()) as { errors: { code: string }[] }).errors[0]!.code), `${method} ${target}`).toBe(true);
      // A mount that cannot be done is an ordinary upload session.
      if (a.status === 202) expect(a.headers.location, `${method} ${target}`).toMatch(/^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f]{32}$/);
    }
    expect(unexpectedErrors()).toEqual([]);
    expect(existsSync(join(mirror.storage.path, '..', 'etc'))).toBe(false);
  });

  it('Content-Range: overflowing, negative, reversed, multi-range and far past the upload: 416 with the current range; a range longer than its body: SIZE_INVALID', async () => {
    const loc = location(await call('POST', '/v2/team/app/blobs/uploads/'));
    for (const range of ['0-99999999999999999999999', '18446744073709551615-18446744073709551616', '-1-5', '5-1', '0-1,2-3', `${Number.MAX_SAFE_INTEGER}-${Number.MAX_SAFE_INTEGER}`, '10-19', 'bytes=0-', '']) {
      const r = await call('PATCH', loc, { headers: { ...OCTET, 'content-range': range }, body: 'abcdefghij' });
      expect([r.status, r.header('range'), r.header('location')], `Content-Range ${JSON.stringify(range)}`).toEqual([416, '0-0', loc]);
    }
    const short = await call('PATCH', loc, { headers: { ...OCTET, 'content-range': '0-999999999999999' }, body: 'abcdefghij' });
    expect([short.status, short.code()]).toEqual([400, 'SIZE_INVALID']);
    expect(unexpectedErrors()).toEqual([]);
  });

  it('a manifest body over the cap is refused before it is read', async () => {
    const port = Number(new URL(mirror.url).port);
    const a = await rawRequest(port, `PUT /v2/team/app/manifests/big HTTP/1.1\r\nHost: x\r\nContent-Type: ${MediaTypes.ociManifest}\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n{`, 5000);
    expect(a.hung).toBe(false);
    expect(a.status).toBe(413);
  });
});

describe('the mirror killed (-9)', () => {
  let storage: TempDir;
  let port: number;
  let configFile: string;
  let cli: CliProcess;
  let c: Call;

  async function start(): Promise<void> {
    cli = runCli(['mirror', '--config', configFile, '--upstream', `docker.io=${NO_UPSTREAM['docker.io']}`, '--storage', storage.path, '--listen', `127.0.0.1:${port}`], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
    await cli.waitForOutput(/listening on/, 60_000);
  }
  async function kill(): Promise<void> {
    cli.child.kill('SIGKILL');
    expect(await cli.exited).toBeNull();
  }

  beforeAll(async () => {
    storage = cleanup.add(await makeTempDir('mirrorgate-kill-'));
    configFile = join(storage.path, '..', `${storage.path.split('/').pop()}.json`);
    writeFileSync(configFile, JSON.stringify(HOSTED));
    cleanup.add(() => execFileSync('rm', ['-f', configFile]));
    port = await freePort();
    await start();
    c = registryClient(`http://127.0.0.1:${port}`);
  }, 90_000);

  it('during an upload: after the restart the upload is resumable where its status says (or cleanly gone), the blob never half-visible', async () => {
    const bytes = generateBytes('killed-upload', 6 * 1024 * 1024 + 11);
    const digest = sha256(bytes);
    const loc = location(await c('POST', '/v2/team/crash/blobs/uploads/'));
    const first = await c('PATCH', loc, { headers: { ...OCTET, 'content-range': '0-1048575' }, body: bytes.subarray(0, 1024 * 1024) });
    expect(first.status).toBe(202);
    const socket = await halfPatch(port, loc, bytes.subarray(1024 * 1024), 3 * 1024 * 1024, { range: `1048576-${bytes.length - 1}`, waitMs: 500 });
    await kill();
    socket.destroy();
    await start();
    expect((await c('GET', `/v2/team/crash/blobs/${digest}`)).status).toBe(404);
    const status = await c('GET', loc);
    if (status.status === 204) {
      expect(offsetOf(status)).toBeGreaterThanOrEqual(1024 * 1024);
      expect(offsetOf(status)).toBeLessThanOrEqual(4 * 1024 * 1024);
      await resumeAndFinish(c, loc, bytes);
    } else {
      expect([status.status, status.code()]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
    }
    expect(sha256((await c('GET', `/v2/team/crash/blobs/${digest}`)).body)).toBe(digest);
  }, 120_000);

  it('during manifest pushes: after the restart every tag is the old manifest or the new one, whole; a half-sent manifest left nothing', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const post = await c('POST', '/v2/team/tags/blobs/uploads/', { query: { digest: sha256(config) }, headers: OCTET, body: config });
    expect(post.status).toBe(201);
    const manifest = (note: string): Buffer =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: sha256(config), size: config.length }, layers: [], annotations: { note } }));
    const old = manifest('old');
    const TAGS = 40;
    for (let i = 0; i < TAGS; i++) expect((await c('PUT', `/v2/team/tags/manifests/t${i}`, { headers: { 'content-type': MediaTypes.ociManifest }, body: old })).status).toBe(201);
    const fresh = Array.from({ length: TAGS }, (_, i) => manifest(`new-${i}`));
    // Every retag at once, one manifest sent only in part; the process dies while they are in flight.
    const sockets = fresh.map((m, i) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.write(`PUT /v2/team/tags/manifests/t${i} HTTP/1.1\r\nHost: x\r\nContent-Type: ${MediaTypes.ociManifest}\r\nContent-Length: ${m.length}\r\n\r\n`);
      s.write(m);
      return s;
    });
    const half = manifest('half');
    const partial = net.connect({ host: '127.0.0.1', port });
    partial.on('error', () => undefined);
    partial.write(`PUT /v2/team/tags/manifests/half HTTP/1.1\r\nHost: x\r\nContent-Type: ${MediaTypes.ociManifest}\r\nContent-Length: ${half.length}\r\n\r\n`);
    partial.write(half.subarray(0, 40));
    await sleep(15);
    await kill();
    for (const s of [...sockets, partial]) s.destroy();
    await start();
    for (let i = 0; i < TAGS; i++) {
      const got = await c('GET', `/v2/team/tags/manifests/t${i}`, { headers: { accept: MediaTypes.ociManifest } });
      expect(got.status, `t${i}`).toBe(200);
      expect(got.body.equals(old) || got.body.equals(fresh[i]!), `t${i}`).toBe(true);
      expect(got.header('docker-content-digest')).toBe(sha256(got.body));
    }
    expect((await c('GET', '/v2/team/tags/manifests/half')).status).toBe(404);
    expect((await c('GET', `/v2/team/tags/manifests/${sha256(half)}`)).status).toBe(404);
    const tags = (await c('GET', '/v2/team/tags/tags/list')).json<{ tags: string[] }>().tags;
    expect(tags.sort()).toEqual(Array.from({ length: TAGS }, (_, i) => `t${i}`).sort());
    expect(cli.output()).not.toMatch(/unexpected error/);
  }, 120_000);
});

describe('a full disk during an upload', () => {
  let disk: TempDir;
  let full: TestMirror;
  let c: Call;

  beforeAll(async () => {
    disk = await makeTempDir('mirrorgate-push-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk.path]);
    cleanup.add(async () => {
      execFileSync('umount', [disk.path]);
      await disk.cleanup();
    });
    full = cleanup.add(await startMirror({ upstreams: NO_UPSTREAM, storage: disk, logger: logs.logger, config: HOSTED }));
    c = registryClient(full.url);
  }, 60_000);

  it('a chunk that does not fit: a clear 507, the upload cancelled and its space returned, nothing stored; the next push works', async () => {
    const bytes = generateBytes('too-big-for-disk', 6 * 1024 * 1024);
    const loc = location(await c('POST', '/v2/team/full/blobs/uploads/'));
    const r = await c('PATCH', loc, { headers: OCTET, body: bytes });
    expect(r.status).toBe(507);
    expect(r.code()).toBe('UNAVAILABLE');
    expect(r.json<{ errors: { message: string }[] }>().errors[0]!.message).toMatch(/storage is full/);
    expect((await c('GET', loc)).status).toBe(404);
    expect((await c('GET', `/v2/team/full/blobs/${sha256(bytes)}`)).status).toBe(404);
    expect(existsSync(blobFile(disk.path, sha256(bytes)))).toBe(false);
    expect(tempFiles(disk.path)).toEqual([]);

    // A single-request push that does not fit: the same, and no session is left behind for it.
    const mono = await c('POST', '/v2/team/full/blobs/uploads/', { query: { digest: sha256(bytes) }, headers: OCTET, body: bytes });
    expect([mono.status, mono.code()]).toEqual([507, 'UNAVAILABLE']);
    expect(tempFiles(disk.path)).toEqual([]);

    const small = generateBytes('fits', 512 * 1024);
    const ok = await c('POST', '/v2/team/full/blobs/uploads/', { query: { digest: sha256(small) }, headers: OCTET, body: small });
    expect(ok.status).toBe(201);
    expect(sha256((await c('GET', `/v2/team/full/blobs/${sha256(small)}`)).body)).toBe(sha256(small));
    expect(unexpectedErrors()).toEqual([]);
  });
});
