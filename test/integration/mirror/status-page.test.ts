import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { mkdir, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { MirrorMetrics } from '../../../src/mirror/metrics.js';
import type { StatusReport } from '../../../src/mirror/status/status-report.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, pushMultiArch } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * The status page in a real browser: Debian's Chromium, headless, driven by playwright-core (no browser
 * download). The screenshot goes to a temp directory; with UPDATE_SCREENSHOTS=1 it replaces
 * docs/images/status-page.png.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps calling home, which this network does not allow.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSWORD = 'st4tus-Page:pass';

const cleanup = new Cleanup();
let hub: HubFront;
let mirror: TestMirror;
let browser: Browser;
let shots: string;
const MINUTE = 60_000;
/** The lookup history's clock, set hours back so the chart shows more than its last minute. */
const trafficClock = new ManualClock(Date.now() - 5 * 60 * MINUTE);
const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;

async function pull(ref: string): Promise<void> {
  const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
  await skopeoCopy(`docker://${mirror.host}/${ref}`, `dir:${out.path}`, { srcCreds: `alice:${PASSWORD}`, throwOnError: true });
  await out.cleanup();
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  await pushImage(registry.url, 'library/alpine', '3.20', { layers: [2048, 60_000], format: 'docker', seed: 'ui-alpine' });
  await pushImage(registry.url, 'library/alpine', '3.19', { layers: [2048, 50_000], format: 'docker', seed: 'ui-alpine-old' });
  await pushImage(registry.url, 'org/tool', 'v2', { layers: [30_000], format: 'oci', seed: 'ui-tool' });
  await pushMultiArch(registry.url, 'library/redis', '7.4', { layers: [4096, 80_000], format: 'oci', seed: 'ui-redis' });
  hub = cleanup.add(await startHubFront({ target: registry.url, rateLimitRemaining: 100 }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-ui-'));
  const htpasswd = path.join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, `alice:${bcrypt.hashSync(PASSWORD, 10)}\n`);
  const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
  mirror = cleanup.add(
    await startMirror({
      // ghcr.io is the same registry under another key: the page shows two upstreams.
      upstreams: { 'docker.io': hub.url, 'ghcr.io': hub.url },
      storage,
      deps: { metrics: new MirrorMetrics({ clock: trafficClock }) },
      config: { mirror: { auth: { htpasswd }, warm: { images: ['redis:7.4'] }, storage: { path: storage.path, maxSize: '2GiB' } } },
    }),
  );
  // Pulls spread over the chart's hours (its clock only): the first of each image goes upstream, the rest do not.
  const pulls = ['library/alpine:3.20', 'library/alpine:3.20', 'ghcr.io/org/tool:v2', 'library/alpine:3.20', 'library/alpine:3.19', 'ghcr.io/org/tool:v2', 'library/alpine:3.20', 'library/alpine:3.19', 'library/alpine:3.20'];
  for (const ref of pulls) {
    trafficClock.advance(30 * MINUTE);
    await pull(ref);
  }
  trafficClock.advance(Date.now() - trafficClock.now());
  shots = cleanup.add(await makeTempDir('mirrorgate-screenshots-')).path;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  cleanup.add(() => browser.close());
}, 120_000);

afterAll(() => cleanup.run());

/** A page in a fresh context, recording console errors, page errors and every URL it asks for. */
async function open(credentials?: { username: string; password: string }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...(credentials ? { httpCredentials: credentials } : {}) });
  cleanup.add(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  const urls: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => urls.push(r.url()));
  return { page, errors, urls };
}

async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).innerText()).replace(/\s+/g, ' ');
}

describe('the status page at /ui', () => {
  it('shows what was pulled through the mirror, the warm image, upstreams and the chart, with no console error and nothing loaded from elsewhere', async () => {
    await expect.poll(() => mirror.server.warm.status().images[0]!.state, { timeout: 20_000 }).toBe('warm');
    const { page, errors, urls } = await open({ username: 'alice', password: PASSWORD });
    const res = await page.goto(`${mirror.url}/ui`);
    expect(res?.status()).toBe(200);
    await page.locator('#repos tbody tr code', { hasText: 'library/alpine' }).waitFor({ timeout: 10_000 });

    const repos = await textOf(page, '#repos');
    expect(repos).toContain('library/alpine');
    expect(repos).toMatch(/3\.20 [\d.]+ KiB · (just now|\d+ s ago)/);
    expect(repos).toContain('3.19');
    expect(repos).toContain('ghcr.io/org/tool');
    expect(repos).toContain('library/redis');
    expect(await textOf(page, '#warm')).toMatch(/redis:7\.4 warm sha256:[0-9a-f]{12} linux\/amd64, linux\/arm64\/v8/);
    const upstreams = await textOf(page, '#upstreams');
    expect(upstreams).toMatch(/docker\.io (just now|\d+ s ago) none \d+ of 100/);
    expect(upstreams).toContain('ghcr.io');
    const cards = await textOf(page, '#cards');
    expect(cards).toMatch(/Repositories 3 4 tags cached/i);
    expect(cards).toMatch(/Answered from the cache \d+%/i);
    expect(cards).toContain('of a 2.0 GiB cap');
    expect(await page.locator('#chart svg rect.cache').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart svg rect.upstream').count()).toBeGreaterThan(0);

    const file = path.join(shots, 'status-page.png');
    await page.screenshot({ path: file, fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      await mkdir(path.join(ROOT, 'docs/images'), { recursive: true });
      await copyFile(file, path.join(ROOT, 'docs/images/status-page.png'));
    }
    expect(errors).toEqual([]);
    expect(urls.length).toBeGreaterThanOrEqual(4); // the page, its style sheet, its script, the JSON
    for (const u of urls) expect(new URL(u).origin).toBe(new URL(mirror.url).origin);
  }, 60_000);

  it('answers its JSON with the same counts the metrics give, under a strict content security policy', async () => {
    const page = await request(`${mirror.url}/ui/`, { headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'/);
    expect(await page.body.text()).toContain('<script src="/ui/status.js" defer></script>');
    const res = await request(`${mirror.url}/ui/api/status`, { headers: { authorization: basic } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const report = (await res.body.json()) as StatusReport;
    expect(report.cache.contents.repositories.map((r) => [r.kind, r.name])).toEqual([
      ['proxied', 'library/alpine'],
      ['proxied', 'library/redis'],
      ['proxied', 'ghcr.io/org/tool'],
    ]);
    expect(report.warm.images).toMatchObject([{ image: 'redis:7.4', state: 'warm', repository: 'docker.io/library/redis' }]);
    const metrics = await (await request(`${mirror.url}/metrics`)).body.text();
    const lookups = [...metrics.matchAll(/^mirrorgate_cache_lookups_total\{kind="\w+",result="(\w+)"\} (\d+)$/gm)];
    const total = lookups.reduce((n, m) => n + Number(m[2]), 0);
    expect(report.traffic.cache.reduce((a, b) => a + b, 0) + report.traffic.upstream.reduce((a, b) => a + b, 0)).toBe(total);
  });

  it('refuses an anonymous visitor: the page and its JSON answer 401 and show no repository', async () => {
    // Chromium meets the Basic challenge with no (or wrong) credentials: it shows the 401 answer, or gives up
    // on the navigation with ERR_INVALID_AUTH_CREDENTIALS. Either way the page never loads.
    for (const credentials of [undefined, { username: 'alice', password: 'wrong' }]) {
      const { page, urls } = await open(credentials);
      const answered = await page.goto(`${mirror.url}/ui`).catch((err: Error) => err);
      if (answered instanceof Error) expect(answered.message).toMatch(/ERR_INVALID_AUTH_CREDENTIALS/);
      else {
        expect(answered?.status()).toBe(401);
        expect(answered?.headers()['www-authenticate']).toBe('Basic realm="mirrorgate"');
        expect(await answered?.text()).not.toContain('alpine');
      }
      expect(urls.filter((u) => !u.endsWith('/ui'))).toEqual([]); // neither the script nor the JSON was fetched
    }
    for (const p of ['/ui/api/status', '/ui/status.js', '/UI/']) {
      const r = await request(`${mirror.url}${p}`);
      expect(r.statusCode, p).toBe(401);
      expect(await r.body.text(), p).not.toContain('alpine');
    }
    const wrong = await request(`${mirror.url}/ui/api/status`, { headers: { authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } });
    await wrong.body.dump();
    expect(wrong.statusCode).toBe(401);
  });
  it('lists hosted repositories only to visitors who may pull them: anonymous read shows cached ones, not hosted ones', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-ui-hosted-'));
    const htpasswd = path.join(dir.path, 'htpasswd');
    writeFileSync(htpasswd, `alice:${bcrypt.hashSync(PASSWORD, 4)}\n`);
    const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
    const start = (anonymousRead: boolean) =>
      startMirror({
        upstreams: { 'docker.io': hub.url },
        storage,
        config: {
          mirror: {
            storage: { path: storage.path },
            auth: { htpasswd, anonymousRead },
            hosted: { repositories: ['team/**'] },
            access: { rules: [{ users: ['alice'], repositories: ['team/**'], actions: ['pull', 'push'] }] },
          },
        },
      });
    // Pushed while credentials are required (a client that finds /v2/ open sends none), then served with anonymous read.
    const closed = await start(false);
    await skopeoCopy(`docker://${closed.host}/library/alpine:3.20`, `docker://${closed.host}/team/app:1`, { srcCreds: `alice:${PASSWORD}`, destCreds: `alice:${PASSWORD}`, throwOnError: true });
    await closed.stop();
    const open = cleanup.add(await start(true));
    const as = async (authorization?: string) => {
      const res = await request(`${open.url}/ui/api/status`, authorization ? { headers: { authorization } } : {});
      expect(res.statusCode).toBe(200);
      return ((await res.body.json()) as StatusReport).cache.contents;
    };
    const alice = await as(basic);
    expect(alice.repositories.map((r) => [r.kind, r.name])).toEqual([
      ['proxied', 'library/alpine'],
      ['hosted', 'team/app'],
    ]);
    expect(alice.total).toBe(2);
    const anonymous = await as();
    expect(anonymous.repositories.map((r) => r.name)).toEqual(['library/alpine']);
    expect(anonymous.total).toBe(1);
    expect(JSON.stringify(anonymous)).not.toContain('team/app');
  });
});
