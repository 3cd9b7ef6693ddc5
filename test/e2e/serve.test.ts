import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { Cleanup, freePort, makeTempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.resolve(root, '..', 'shared', 'fixtures', 'admission');
const cleanup = new Cleanup();
afterAll(() => cleanup.run());

function fixture(name: string): string {
  try {
    return readFileSync(path.join(fixtures, name), 'utf8');
  } catch (err) {
    throw new Error(`the shared AdmissionReview fixtures are missing (expected ${fixtures}): ${(err as Error).message}`);
  }
}

describe('mirrorgate serve (the README run command)', () => {
  it('runs the mirror and the webhook together on embedded defaults, with a generated certificate', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-serve-'));
    const [mirrorPort, webhookPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), 'serve', '--certs', path.join(dir.path, 'certs')], {
      cwd: root,
      env: {
        ...process.env,
        MIRRORGATE_LISTEN: `127.0.0.1:${mirrorPort}`,
        MIRRORGATE_WEBHOOK_LISTEN: `127.0.0.1:${webhookPort}`,
        MIRRORGATE_STORAGE: path.join(dir.path, 'data'),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cleanup.add(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (const until = Date.now() + 30_000; !/mirrorgate serve:/.test(out); ) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`serve did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const base = await request(`http://127.0.0.1:${mirrorPort}/v2/`);
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0');
    await base.body.dump();

    // The generated certificate is for the webhook Service's DNS names and verifies against the generated CA.
    const ca = readFileSync(path.join(dir.path, 'certs', 'ca.crt'));
    const agent = new Agent({ connect: { ca, servername: 'mirrorgate-webhook.mirrorgate.svc' } });
    cleanup.add(() => agent.close());
    const res = await request(`https://127.0.0.1:${webhookPort}/mutate`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: fixture('pod-create-kubectl-run.json'),
    });
    const review = (await res.body.json()) as { response: { allowed: boolean; patch: string } };
    expect(review.response.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(review.response.patch, 'base64').toString()) as { path: string; value: unknown }[];
    expect(patch).toContainEqual(expect.objectContaining({ path: '/spec/containers/0/image', value: 'registry.krisalee.dev.joona.fr/library/nginx:latest' }));
    expect(patch).toContainEqual(expect.objectContaining({ path: '/spec/imagePullSecrets', value: [{ name: 'mirrorgate-pull-secret' }] }));

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
