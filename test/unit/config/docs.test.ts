import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { ENV_OVERRIDES } from '../../../src/config/load.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const doc = readFileSync(path.join(root, 'docs', 'configuration.md'), 'utf8');

/** A zod schema node, as far as this walk needs to see it (zod 4's public `_zod.def`). */
interface SchemaNode {
  _zod: { def: { type: string; innerType?: SchemaNode; in?: SchemaNode; shape?: Record<string, SchemaNode>; valueType?: SchemaNode; element?: SchemaNode } };
}

/** Every leaf field of the configuration, as a dotted path (`<host>` for map keys, `[]` for lists). */
function fieldPaths(node: SchemaNode, at = '', out: string[] = []): string[] {
  const def = node._zod.def;
  switch (def.type) {
    case 'default':
    case 'optional':
    case 'prefault':
    case 'nullable':
      return fieldPaths(def.innerType!, at, out);
    case 'pipe':
      return fieldPaths(def.in!, at, out);
    case 'object':
      for (const [k, v] of Object.entries(def.shape!)) fieldPaths(v, at ? `${at}.${k}` : k, out);
      return out;
    case 'record':
      return fieldPaths(def.valueType!, `${at}.${at === 'upstreams' ? '<host>' : '<name>'}`, out);
    case 'array':
      return fieldPaths(def.element!, `${at}[]`, out);
    default:
      out.push(at);
      return out;
  }
}

describe('docs/configuration.md', () => {
  const fields = fieldPaths(configSchema as unknown as SchemaNode);

  it('finds the fields (the walk itself works)', () => {
    expect(fields).toContain('mirror.listen');
    expect(fields).toContain('upstreams.<host>.url');
    expect(fields.length).toBeGreaterThan(50);
  });

  it('documents every configuration field', () => {
    const missing = fields
      // A credential's source (value, file or env) is documented once for both credentials.
      .map((f) => f.replace(/\.credentials\.(username|password)\.(value|file|env)$/, '.credentials.$1'))
      .map((f) => f.replace(/\[\]$/, ''))
      .filter((f) => !doc.includes(`\`${f}\``) && !doc.includes(`\`${f}.`) && !doc.includes(`\`${f} `));
    expect([...new Set(missing)]).toEqual([]);
  });

  it('documents every environment variable', () => {
    for (const name of Object.keys(ENV_OVERRIDES)) expect(doc).toContain(`\`${name}\``);
  });
});
