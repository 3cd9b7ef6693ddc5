import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliProcess } from '../../helpers/cli-process.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { registryClient, type RegistryAnswer, type RegistryCall } from '../../helpers/registry-client.js';
import { Cleanup, freePort, makeTempDir } from '../../helpers/tmp.js';

/**
 * `mirrorgate mirror` with `mirror.workers: 2` on one filesystem storage, in front of the Docker Hub-like
 * upstream: a herd on a cold blob spread over the workers makes one upstream GET, a chunked push whose
 * requests alternate between the workers completes, /metrics sums the workers, a worker killed mid-download
 * is replaced with nothing partial visible, and SIGTERM stops them all.
 */
const MiB = 1024 * 1024;
const OCTET = { 'content-type': 'application/octet-stream' };
const ACCEPT = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

const cleanup = new Cleanup();
let hub: HubFront;
let mirror: CliProcess;
let url: string;
let storage: string;
/** Set by the test that stops the mirror on purpose. */
let stopped = false;
const images: Record<string, PushedImage> = {};

/** A request on a connection of its own: the cluster hands each new connection to the next worker. */
async function call(method: string, p: string, req: RegistryCall & { reqId?: string } = {}): Promise<RegistryAnswer> {
  const client = new Client(url);
  try {
    return await registryClient(url, { dispatcher: client })(method, p, { ...req, headers: { ...(req.headers ?? {}), ...(req.reqId ? { 'x-request-id': req.reqId } : {}) } });
  } finally {
    await client.close();
  }
}

/** A blob GET on its own connection; the status and the digest of what came (a cut answer digests to something else). */
async function blob(repo: string, digest: string, reqId?: string): Promise<{ status: number; digest: string }> {
  const client = new Client(url);
  try {
    const res = await request(`${url}/v2/${repo}/blobs/${digest}`, { dispatcher: client, headers: reqId ? { 'x-request-id': reqId } : {} });
    const hash = createHash('sha256');
    for await (const c of res.body) hash.update(c as Buffer);
    return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}` };
  } catch {
    return { status: 0, digest: '' };
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function pull(repo: string, reference: string, image: { digest: string; config: { digest: string }; layers: { digest: string }[] }): Promise<void> {
  const res = await call('GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
  expect(sha256(res.body)).toBe(image.digest);
  for (const b of [image.config, ...image.layers]) expect(await blob(repo, b.digest)).toEqual({ status: 200, digest: b.digest });
}

/** The mirror's JSON log lines (the primary's and the workers'), all of them (the CLI helper keeps only the last 64 KiB). */
const logged: Record<string, unknown>[] = [];
function logLines(): Record<string, unknown>[] {
  return logged;
}

/** Collects the log lines of `child` as they come. */
function collectLog(cli: CliProcess): void {
  let partial = '';
  cli.child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      try {
        logged.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
}

/** Which workers served the requests with these ids (from their request log lines). */
function servedBy(reqIds: string[]): Set<unknown> {
  return new Set(logLines().filter((l) => l.msg === 'request' && reqIds.includes(l.reqId as string)).map((l) => l.worker));
}

/** Workers the primary saw listening: worker id -> pid. */
function workersListening(): Map<number, number> {
  return new Map(logLines().filter((l) => l.msg === 'worker listening').map((l) => [l.worker as number, l.workerPid as number]));
}

function answered(method: 'GET' | 'HEAD', digest: string): number {
  return hub.requests.filter((r) => r.kind === 'blob' && r.method === method && r.authorized && r.path.includes(digest)).length;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; mirror output:\n${mirror.output().slice(-4000)}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  for (const name of ['herd', 'warm', 'killed']) {
    images[name] = await pushImage(registry.url, `library/${name}`, 'v1', { layers: [name === 'killed' ? 24 * MiB : 2 * MiB, 300_000], format: 'oci', seed: `workers-${name}` });
  }
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-workers-'));
  storage = path.join(dir.path, 'data');
  const port = await freePort();
  const config = {
    upstreams: { 'docker.io': { url: hub.url } },
    mirror: { listen: `127.0.0.1:${port}`, workers: 2, storage: { path: storage }, hosted: { repositories: ['team/**'] } },
  };
  const file = path.join(dir.path, 'config.json');
  await writeFile(file, JSON.stringify(config));
  mirror = runCli(['mirror', '--config', file], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
  collectLog(mirror);
  await mirror.waitForOutput(/mirrorgate mirror listening on .*2 workers/, 60_000);
  url = `http://127.0.0.1:${port}`;
  await until('both workers listening', () => workersListening().size === 2);
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.reset();
  hub.faults.length = 0;
});

afterEach(() => {
  if (stopped) return;
  const { exitCode, signalCode } = mirror.child;
  if (exitCode !== null || signalCode !== null) throw new Error(`the mirror exited (${exitCode ?? signalCode}):\n${mirror.output().slice(-8000)}`);
});

describe('mirror with two workers on one filesystem storage', () => {
  it('a herd of 20 clients over both workers on a cold blob: one upstream GET, every client gets the blob; warm pulls verified', async () => {
    const layer = images.herd!.layers[0]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'delay', ms: 800 } });
    const ids = Array.from({ length: 20 }, (_, i) => `herd-${i}`);
    const results = await Promise.all(ids.map((id) => blob('library/herd', layer.digest, id)));
    for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(1);
    await until('request logs', () => servedBy(ids).size === 2);

    await pull('library/warm', 'v1', images.warm!);
    await pull('library/herd', 'v1', images.herd!);
    hub.reset();
    for (let i = 0; i < 4; i++) await pull('library/warm', 'v1', images.warm!);
    await pull('library/herd', 'v1', images.herd!);
    // Warm: no blob went to the upstream again, whichever worker answered.
    for (const b of [images.warm!.config, ...images.warm!.layers, ...images.herd!.layers]) expect(answered('GET', b.digest)).toBe(0);
  }, 60_000);

  it('a chunked push whose requests alternate between the workers completes, verified, and is pulled through both', async () => {
    const bytes = generateBytes('workers-push', 5 * MiB + 123);
    const digest = sha256(bytes);
    const ids: string[] = [];
    const id = (): string => {
      ids.push(`push-${ids.length}`);
      return ids[ids.length - 1]!;
    };
    const started = await call('POST', '/v2/team/app/blobs/uploads/', { reqId: id() });
    expect(started.status).toBe(202);
    let loc = started.header('location')!;
    const cuts = [0, 2 * MiB, 3 * MiB + 17, 4 * MiB, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const [from, to] = [cuts[i]!, cuts[i + 1]!];
      const res = await call('PATCH', loc, { reqId: id(), headers: { ...OCTET, 'content-range': `${from}-${to - 1}` }, body: bytes.subarray(from, to) });
      expect(res.status, res.body.toString()).toBe(202);
      expect(res.header('range')).toBe(`0-${to - 1}`);
      loc = res.header('location')!;
    }
    const status = await call('GET', loc, { reqId: id() });
    expect(status.header('range')).toBe(`0-${bytes.length - 1}`);
    const done = await call('PUT', loc, { reqId: id(), query: { digest }, headers: OCTET });
    expect(done.status, done.body.toString()).toBe(201);
    await until('request logs', () => servedBy(ids).size === 2);

    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    expect((await call('POST', '/v2/team/app/blobs/uploads/', { query: { digest: sha256(config) }, headers: OCTET, body: config })).status).toBe(201);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length }],
      }),
    );
    expect((await call('PUT', '/v2/team/app/manifests/v1', { headers: { 'content-type': MediaTypes.ociManifest }, body: manifest })).status).toBe(201);
    // Several connections, so both workers answer the tag (neither remembers an old answer).
    for (let i = 0; i < 4; i++) await pull('team/app', 'v1', { digest: sha256(manifest), config: { digest: sha256(config) }, layers: [{ digest }] });
  }, 60_000);

  it('/metrics answers for both workers, through either', async () => {
    const before = async (): Promise<number> => {
      const text = (await call('GET', '/metrics')).body.toString();
      return [...text.matchAll(/^mirrorgate_mirror_requests_total\{[^}]*kind="base"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const start = await before();
    const ids = Array.from({ length: 10 }, (_, i) => `base-${i}`);
    for (const reqId of ids) expect((await call('GET', '/v2/', { reqId })).status).toBe(200);
    await until('request logs', () => servedBy(ids).size === 2);
    // Two answers, on two connections (so from both workers): each counts all ten.
    expect(await before()).toBe(start + 10);
    expect(await before()).toBe(start + 10);
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
  }, 30_000);

  it('kill -9 of the worker downloading a blob: its client is cut or whole, the other worker finishes the blob, the worker is replaced, nothing partial is stored', async () => {
    const layer = images.killed!.layers[0]!;
    // The upstream sends the headers, then waits: the download is running when its worker dies.
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'stall', ms: 5000 } });
    const clients = [blob('library/killed', layer.digest)];
    await until('the download to start', () => answered('GET', layer.digest) === 1);
    clients.push(blob('library/killed', layer.digest), blob('library/killed', layer.digest));
    const leaseFile = path.join(storage, 'state', 'leases', `${encodeURIComponent(`fetch:${layer.digest}`)}.json`);
    const holder = (JSON.parse(await readFile(leaseFile, 'utf8')) as { pid: number }).pid;
    const before = workersListening();
    expect([...before.values()]).toContain(holder);
    process.kill(holder, 'SIGKILL');

    const results = await Promise.all(clients);
    // Each answer is whole and right, or cut (its worker died): never whole and wrong.
    for (const r of results) expect(r.status === 0 || (r.status === 200 && r.digest === layer.digest), JSON.stringify(r)).toBe(true);
    const whole = results.filter((r) => r.digest === layer.digest).length;
    expect(whole).toBeGreaterThanOrEqual(1); // at least the clients of the surviving worker
    expect(await blob('library/killed', layer.digest)).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(2);
    const stored = await readFile(path.join(storage, 'blobs', 'sha256', layer.digest.slice(7, 9), layer.digest.slice(7)));
    expect(sha256(stored)).toBe(layer.digest);

    await until('a new worker', () => workersListening().size === 3, 30_000);
    await pull('library/killed', 'v1', images.killed!);
    for (let i = 0; i < 3; i++) expect(await blob('library/killed', layer.digest)).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(2);
  }, 90_000);

  it('SIGTERM stops the primary and every worker', async () => {
    const pids = [...workersListening().values()].filter(alive);
    expect(pids.length).toBe(2);
    stopped = true;
    mirror.child.kill('SIGTERM');
    expect(await mirror.exited).toBe(0);
    await until('the workers to exit', () => pids.every((p) => !alive(p)), 10_000);
    // The claim went with the primary: nothing holds the storage now.
    expect(await readdir(path.join(storage, 'state'))).not.toContain('lock');
  }, 30_000);
});
