import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../helpers/hub-front.js';
import { pushImage, type PushedImage } from '../helpers/images.js';
import { readDirImage, skopeoCopy } from '../helpers/skopeo.js';
import { runCli } from '../helpers/cli-process.js';
import { Cleanup, freePort, makeTempDir } from '../helpers/tmp.js';

const cleanup = new Cleanup();
let hub: HubFront;
let image: PushedImage;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'library/busybox', '1.36', { layers: [4096, 500_000], format: 'docker', seed: 'cli' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 60_000);

afterAll(() => cleanup.run());

describe('mirrorgate mirror (the command)', () => {
  it('serves a skopeo pull with the upstream digests, sweeps crash leftovers, and stops cleanly on SIGTERM', async () => {
    const storage = cleanup.add(await makeTempDir('mirrorgate-cli-'));
    mkdirSync(path.join(storage.path, 'tmp'), { recursive: true });
    writeFileSync(path.join(storage.path, 'tmp', 'left-by-a-crash.part'), 'partial');
    const port = await freePort();
    const cli = runCli(['mirror', '--upstream', `docker.io=${hub.url}`, '--storage', storage.path, '--listen', `127.0.0.1:${port}`], cleanup);
    // The command's line on stderr, not the log line on stdout (which says "mirror listening on" too, and may come first).
    await cli.waitForOutput(/mirrorgate mirror listening on/);
    expect(cli.output()).toMatch(new RegExp(`mirroring docker.io -> ${hub.url.replace(/[.]/g, '\\.')}`));
    expect(readdirSync(path.join(storage.path, 'tmp'))).toEqual([]);

    const out = cleanup.add(await makeTempDir('mirrorgate-cli-out-'));
    await skopeoCopy(`docker://127.0.0.1:${port}/library/busybox:1.36`, `dir:${out.path}`, { throwOnError: true });
    const pulled = await readDirImage(out.path);
    expect(pulled.manifestDigest).toBe(image.digest);
    expect(pulled.blobs.sort()).toEqual([image.config.digest, ...image.layers.map((l) => l.digest)].sort());

    const metrics = await request(`http://127.0.0.1:${port}/metrics`);
    const text = await metrics.body.text();
    expect(text).toMatch(/mirrorgate_upstream_requests_total\{upstream="docker.io",method="GET",kind="blob",outcome="200"\} 3/);
    expect(text).toMatch(/mirrorgate_upstream_ratelimit_remaining\{upstream="docker.io"\} \d+/);

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toMatch(/shutting down/);
  });

  it('reports every configuration problem at once and exits non-zero', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-cli-config-'));
    const file = path.join(dir.path, 'config.yaml');
    writeFileSync(file, 'mirror:\n  listen: nowhere\n  storage: { path: 42 }\nupstreams:\n  docker.io: { url: "not a url" }\n');
    const cli = runCli(['mirror', '--config', file], cleanup);
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toMatch(/mirror\.listen/);
    expect(cli.output()).toMatch(/mirror\.storage\.path/);
    expect(cli.output()).toMatch(/upstreams\.docker\.io\.url/);
  });

  it('refuses to start on a storage directory it cannot use, saying why', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-cli-ro-'));
    const notADir = path.join(dir.path, 'file');
    writeFileSync(notADir, 'x');
    const cli = runCli(['mirror', '--storage', path.join(notADir, 'cache'), '--listen', '127.0.0.1:0', '--upstream', `docker.io=${hub.url}`], cleanup);
    expect(await cli.exited).not.toBe(0);
    expect(cli.output()).toMatch(/storage directory .* is not usable/);
  });
});
