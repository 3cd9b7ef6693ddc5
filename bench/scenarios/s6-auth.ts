import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import type { Scenario } from '../lib/context.js';
import { startUpstream } from '../lib/fixtures.js';
import { MANIFEST_CASES, measureManifests, seedImage, warmManifests } from '../lib/manifests.js';
import { mirrorAccepts, startMirrorProcess } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtMs, fmtRate, fmtRatio } from '../lib/stats.js';
import { makeTempDir } from '../../test/helpers/tmp.js';

/** 6. Scenario 3 against the mirror with htpasswd (bcrypt cost 10) on, vs the same mirror with auth off. */
export const authCost: Scenario = {
  id: '6',
  title: 'Auth cost (manifest requests with htpasswd, bcrypt cost 10)',
  async run(ctx) {
    const result = emptyResult(this.id, this.title);
    const dir = ctx.cleanup.add(await makeTempDir('mirrorgate-bench-auth-'));
    const htpasswd = join(dir.path, 'htpasswd');
    await writeFile(htpasswd, `bench:${bcrypt.hashSync('bench-password', 10)}\n`);
    const authConfig = { auth: { htpasswd } };
    const accepted = await mirrorAccepts(ctx.mirrorMain, authConfig);
    if (!accepted.ok) {
      result.skipped = `this build of the mirror does not accept mirror.auth.htpasswd (${accepted.message.slice(0, 300)})`;
      return result;
    }
    const connections = ctx.quick ? 8 : 64;
    const durationMs = ctx.quick ? 1000 : 4000;
    const runs = Math.min(ctx.runs, 3);
    const upstream = await startUpstream(ctx);
    const image = await seedImage(upstream.url);
    const cpuProf = ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {};
    const open = ctx.cleanup.add(await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': upstream.url }, ...cpuProf }));
    const authed = ctx.cleanup.add(
      await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': upstream.url }, mirrorConfig: authConfig, ...cpuProf }),
    );
    const basic = `Basic ${Buffer.from('bench:bench-password').toString('base64')}`;
    const targets = [
      { name: 'auth off', base: open.url },
      { name: 'auth on', base: authed.url, headers: { authorization: basic } },
    ];
    for (const t of targets) await warmManifests(t, image);
    const res = await measureManifests(ctx, targets, image, { connections, durationMs, runs });
    const off = res.get('auth off')!;
    const on = res.get('auth on')!;
    result.tables.push({
      title: `${connections} connections, ${durationMs / 1000} s per measurement, undici client, every request with Basic credentials, median of ${runs} runs`,
      columns: ['request', 'auth off req/s', 'p50 / p99', 'auth on req/s', 'p50 / p99', 'on / off'],
      rows: MANIFEST_CASES.map((c) => {
        const a = off.get(c.name)!;
        const b = on.get(c.name)!;
        return [c.name, fmtRate(a.rps), `${fmtMs(a.p50Ms)} / ${fmtMs(a.p99Ms)}`, fmtRate(b.rps), `${fmtMs(b.p50Ms)} / ${fmtMs(b.p99Ms)}`, fmtRatio(b.rps / a.rps)];
      }),
    });
    for (const c of MANIFEST_CASES) {
      const r = on.get(c.name)!.rps / off.get(c.name)!.rps;
      result.checks.push({ name: `${c.name}, auth on vs off`, value: fmtRatio(r), target: '>= 0.9x', met: r >= 0.9 });
      result.metrics[`auth off ${c.name} rps`] = off.get(c.name)!.rps;
      result.metrics[`auth on ${c.name} rps`] = on.get(c.name)!.rps;
    }
    result.notes.push('One user; a bcrypt check costs tens of milliseconds, so the rate with auth on depends on the mirror remembering successful checks.');
    return result;
  },
};
