import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WEBHOOK_API_CALLS } from '../../../src/deploy/webhook-permissions.js';

const WEBHOOK_SRC = path.resolve(import.meta.dirname, '../../../src/webhook');

/** `file call` for every Kubernetes API call in src/webhook: client method calls and ListWatch paths. */
function callsInCode(): string[] {
  const found = new Set<string>();
  for (const file of readdirSync(WEBHOOK_SRC).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(path.join(WEBHOOK_SRC, file), 'utf8');
    for (const m of text.matchAll(/this\.(core|admission)\.([A-Za-z]+)\(/g)) found.add(`${file} ${m[1]}.${m[2]}`);
    for (const m of text.matchAll(/new ListWatch\(\s*(['`])([^'`]+)\1/g)) found.add(`${file} watch ${m[2]}`);
    // An API client made some other way would escape this scan: make sure there is none.
    for (const m of text.matchAll(/makeApiClient\((\w+)\)/g)) expect(['CoreV1Api', 'AdmissionregistrationV1Api'], `${file}: ${m[1]}`).toContain(m[1]);
  }
  return [...found].sort();
}

describe('the webhook permission table', () => {
  it('lists exactly the Kubernetes API calls the webhook code makes', () => {
    const table = WEBHOOK_API_CALLS.map((c) => `${c.file} ${c.call}`).sort();
    expect(new Set(table).size).toBe(table.length);
    expect(table).toEqual(callsInCode());
  });

  it('gives each call at least one permission', () => {
    for (const c of WEBHOOK_API_CALLS) expect(c.needs.length, c.call).toBeGreaterThan(0);
  });
});
