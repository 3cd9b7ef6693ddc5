/**
 * Writes the configuration's JSON Schema (src/config/json-schema.ts) into the chart's values.schema.json under
 * `config`, so `helm install` checks the configuration against the product's own schema. Run after changing
 * src/config/schema.ts: `npx tsx scripts/chart-schema.ts` (a test fails while the two differ).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configJsonSchema } from '../src/config/json-schema.js';

export const VALUES_SCHEMA = path.resolve(import.meta.dirname, '../charts/mirrorgate/values.schema.json');

/** values.schema.json's text with `config` replaced by the configuration's schema. */
export function valuesSchemaText(current: string): string {
  const schema = JSON.parse(current) as { properties: Record<string, unknown> };
  schema.properties.config = { description: 'The configuration file (docs/configuration.md), checked against src/config/schema.ts', ...configJsonSchema() };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  writeFileSync(VALUES_SCHEMA, valuesSchemaText(readFileSync(VALUES_SCHEMA, 'utf8')));
}
