/**
 * Writes the configuration's JSON Schema into the chart's values.schema.json under `config`, so `helm install` checks
 * the configuration against the product's own schema. Run after changing src/config/schema.ts:
 * `npx tsx scripts/chart-schema.ts` (a test fails while the two differ).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

export const VALUES_SCHEMA = path.resolve(import.meta.dirname, '../charts/mirrorgate/values.schema.json');

/**
 * The configuration file's JSON Schema, derived from the zod schema: field names, types, enums, bounds and patterns,
 * unknown fields refused. What zod checks in code (durations, sizes, listen addresses, cross-field rules) has no JSON
 * Schema form and stays with the product's loader.
 */
function configJsonSchema(): Record<string, unknown> {
  const { $schema: _draft, ...schema } = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { description: 'The configuration file (docs/configuration.md), checked against src/config/schema.ts', ...schema };
}

/** values.schema.json's text with `config` replaced by the configuration's schema. */
export function valuesSchemaText(current: string): string {
  const schema = JSON.parse(current) as { properties: Record<string, unknown> };
  schema.properties.config = configJsonSchema();
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  writeFileSync(VALUES_SCHEMA, valuesSchemaText(readFileSync(VALUES_SCHEMA, 'utf8')));
}
