import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The configuration file's JSON Schema (draft 2020-12), derived from the zod schema: field names, types, enums,
 * bounds and patterns, unknown fields refused. Checks that zod makes in code (durations, sizes, listen addresses,
 * cross-field rules) are not representable and stay with the loader. Tools that take a JSON Schema use it: the Helm
 * chart's values.schema.json embeds it under `config`.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}
