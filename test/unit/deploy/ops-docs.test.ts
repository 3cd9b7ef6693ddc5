import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const PAGES = ['docs/operations.md', 'docs/troubleshooting.md'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Metric names the code registers: `name: 'mirrorgate_...'`. */
const registered = new Set(sources(path.join(ROOT, 'src')).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/name: '(mirrorgate_[a-z_]+)'/g)].map((m) => m[1]!)));

describe.each(PAGES)('%s', (page) => {
  const text = readFileSync(path.join(ROOT, page), 'utf8');

  it('names only metrics the code registers', () => {
    const named = new Set([...text.matchAll(/\bmirrorgate_[a-z_]+\b/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(3);
    expect([...named].filter((n) => !registered.has(n))).toEqual([]);
  });

  it('links to pages that exist, and to headings they have', () => {
    for (const [, target, anchor] of text.matchAll(/\]\(([\w./-]+\.md)(?:#([\w-]+))?\)/g)) {
      const file = path.join(ROOT, path.dirname(page), target!);
      const linked = readFileSync(file, 'utf8');
      if (anchor === undefined) continue;
      // GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens.
      const ids = [...linked.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-'));
      expect(ids, `${target}#${anchor}`).toContain(anchor);
    }
  });
});
