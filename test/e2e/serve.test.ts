import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-process.js';
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
    const cli = runCli(['serve', '--certs', path.join(dir.path, 'certs')], cleanup, {
      MIRRORGATE_LISTEN: `127.0.0.1:${mirrorPort}`,
      MIRRORGATE_WEBHOOK_LISTEN: `127.0.0.1:${webhookPort}`,
      MIRRORGATE_STORAGE: path.join(dir.path, 'data'),
    });
    await cli.waitForOutput(/mirrorgate serve:/);

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

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});
