import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The recorded AdmissionReviews in ../shared/fixtures/admission (beside the project). Missing means a broken checkout: fail. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const fixturesDir = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'admission');

export const FIXTURE_FILES = [
  'pod-create-kubectl-run.json',
  'pod-create-dry-run.json',
  'pod-create-multi-registry.json',
  'pod-create-from-replicaset.json',
  'pod-update-ephemeral-kubectl-debug.json',
  'pod-update-set-image.json',
] as const;

export function loadFixture(name: (typeof FIXTURE_FILES)[number]): Record<string, unknown> & { request: Record<string, unknown> & { uid: string; object: Record<string, unknown> } } {
  if (!existsSync(fixturesDir)) {
    throw new Error(`admission fixtures not found at ${fixturesDir}: the shared/ folder must sit beside the project (see shared/README.md)`);
  }
  const file = path.join(fixturesDir, name);
  if (!existsSync(file)) throw new Error(`admission fixture missing: ${file}`);
  return JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof loadFixture>;
}
