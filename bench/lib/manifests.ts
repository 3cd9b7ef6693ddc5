import { ALL_MANIFEST_TYPES, pushImage, type PushedImage } from '../../test/helpers/images.js';
import type { BenchContext } from './context.js';
import { REPO } from './fixtures.js';
import { undiciRate, type RateResult } from './load.js';
import { request } from 'undici';
import { median } from './stats.js';

/** The four manifest requests a client makes: HEAD and GET, by tag and by digest. */
export const MANIFEST_CASES = [
  { name: 'HEAD by tag', method: 'HEAD', by: 'tag' },
  { name: 'GET by tag', method: 'GET', by: 'tag' },
  { name: 'HEAD by digest', method: 'HEAD', by: 'digest' },
  { name: 'GET by digest', method: 'GET', by: 'digest' },
] as const;

export type ManifestCase = (typeof MANIFEST_CASES)[number]['name'];

/** A small single-platform image (two small layers), tagged `v1` in the upstream. */
export async function seedImage(upstreamUrl: string): Promise<PushedImage> {
  return pushImage(upstreamUrl, REPO, 'v1', { layers: [4096, 8192], format: 'docker', seed: `manifests-${Date.now()}` });
}

export interface ManifestTarget {
  name: string;
  base: string;
  headers?: Record<string, string>;
}

export function manifestUrl(base: string, image: PushedImage, by: 'tag' | 'digest'): string {
  return `${base}/v2/${REPO}/manifests/${by === 'tag' ? image.tag! : image.digest}`;
}

/** GETs the manifest by tag and by digest once through `target`, so it is cached; throws unless 200. */
export async function warmManifests(target: ManifestTarget, image: PushedImage): Promise<void> {
  for (const by of ['tag', 'digest'] as const) {
    const res = await request(manifestUrl(target.base, image, by), { headers: { accept: ALL_MANIFEST_TYPES, ...target.headers } });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${target.name}: GET manifest by ${by}: HTTP ${res.statusCode}`);
  }
}

/**
 * Runs every case against every target, `runs` times in rotating order, `connections` connections for
 * `durationMs` each. Returns, per target and case, the run with the median rate.
 */
export async function measureManifests(
  ctx: BenchContext,
  targets: ManifestTarget[],
  image: PushedImage,
  opts: { connections: number; durationMs: number; runs: number },
): Promise<Map<string, Map<ManifestCase, RateResult>>> {
  const all = new Map<string, Map<ManifestCase, RateResult[]>>(targets.map((t) => [t.name, new Map()]));
  for (let i = 0; i < opts.runs; i++) {
    for (const c of MANIFEST_CASES) {
      for (let j = 0; j < targets.length; j++) {
        const t = targets[(i + j) % targets.length]!;
        // undici for every case: wrk cannot do HEAD (it waits for a body after a HEAD answer's Content-Length).
        const r = await undiciRate({
          url: manifestUrl(t.base, image, c.by),
          method: c.method,
          headers: { accept: ALL_MANIFEST_TYPES, ...t.headers },
          connections: opts.connections,
          durationMs: opts.durationMs,
        });
        if (r.errors > 0) throw new Error(`${t.name} ${c.name}: ${r.errors} errors of ${r.requests} requests`);
        const per = all.get(t.name)!;
        per.set(c.name, [...(per.get(c.name) ?? []), r]);
      }
    }
    ctx.log(`manifest round ${i + 1}/${opts.runs} done`);
  }
  const out = new Map<string, Map<ManifestCase, RateResult>>();
  for (const [name, per] of all) {
    const m = new Map<ManifestCase, RateResult>();
    for (const [c, rs] of per) {
      const mid = median(rs.map((r) => r.rps));
      m.set(c, rs.reduce((best, r) => (Math.abs(r.rps - mid) < Math.abs(best.rps - mid) ? r : best)));
    }
    out.set(name, m);
  }
  return out;
}
