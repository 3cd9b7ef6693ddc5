import { describe, expect, it } from 'vitest';
import { familiarName, formatReference, parseReference } from '../../../src/reference/parse.js';

const D64 = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';
const D128 = D64 + D64;

function parsed(text: string): string {
  const r = parseReference(text);
  if (!r.ok) throw new Error(`${text}: ${r.error}`);
  return formatReference(r.ref);
}

describe('parseReference: normalisation as Docker/containerd do it', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['library/nginx', 'docker.io/library/nginx'],
    ['bitnami/nginx:1.27', 'docker.io/bitnami/nginx:1.27'],
    ['docker.io/nginx', 'docker.io/library/nginx'],
    ['docker.io/library/redis@sha256:' + D64, 'docker.io/library/redis@sha256:' + D64],
    ['index.docker.io/x', 'docker.io/library/x'],
    ['index.docker.io/a/b:t', 'docker.io/a/b:t'],
    ['ghcr.io/example-org/app:v2.3.1', 'ghcr.io/example-org/app:v2.3.1'],
    ['quay.io/prometheus/node-exporter:v1.8.2', 'quay.io/prometheus/node-exporter:v1.8.2'],
    ['localhost:5000/tools/debug:1', 'localhost:5000/tools/debug:1'],
    ['localhost/foo', 'localhost/foo'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
    ['Example.com/foo', 'Example.com/foo'],
    ['UPPER/foo', 'UPPER/foo'],
    ['127.0.0.1:5000/a', '127.0.0.1:5000/a'],
    ['[::1]:5000/a:b', '[::1]:5000/a:b'],
    ['a/b/c/d/e:tag', 'docker.io/a/b/c/d/e:tag'],
    ['a__b/c--d/e.f_g', 'docker.io/a__b/c--d/e.f_g'],
    ['nginx:1.27@sha256:' + D64, 'docker.io/library/nginx:1.27@sha256:' + D64],
    ['nginx@sha512:' + D128, 'docker.io/library/nginx@sha512:' + D128],
    ['nginx:_under', 'docker.io/library/nginx:_under'],
    ['nginx:UPPER.case-tag', 'docker.io/library/nginx:UPPER.case-tag'],
    ['nginx:' + 'a'.repeat(128), 'docker.io/library/nginx:' + 'a'.repeat(128)],
    ['registry.krisalee.dev.joona.fr/library/nginx:1.27', 'registry.krisalee.dev.joona.fr/library/nginx:1.27'],
  ])('%s -> %s', (input, expected) => {
    expect(parsed(input)).toBe(expected);
  });

  it('splits the parts', () => {
    const r = parseReference('ghcr.io/a/b:t@sha256:' + D64);
    expect(r).toEqual({ ok: true, ref: { domain: 'ghcr.io', path: 'a/b', tag: 't', digest: 'sha256:' + D64 } });
  });

  it('gives the familiar name', () => {
    const f = (s: string) => {
      const r = parseReference(s);
      if (!r.ok) throw new Error(r.error);
      return familiarName(r.ref);
    };
    expect(f('docker.io/library/nginx')).toBe('nginx');
    expect(f('library/a/b')).toBe('library/a/b');
    expect(f('bitnami/nginx')).toBe('bitnami/nginx');
    expect(f('ghcr.io/a/b')).toBe('ghcr.io/a/b');
  });

  it('accepts a name of exactly 255 characters and refuses 256', () => {
    const path255 = 'a'.repeat(255 - 'docker.io/library/'.length);
    expect(parseReference(path255).ok).toBe(true);
    expect(parseReference(path255 + 'a').ok).toBe(false);
    const host = 'example.com';
    const rest = 'b'.repeat(255 - host.length - 1);
    expect(parseReference(`${host}/${rest}`).ok).toBe(true);
    expect(parseReference(`${host}/${rest}b`).ok).toBe(false);
  });

  it.each([
    [''],
    [':'],
    ['@'],
    ['nginx:'],
    ['nginx@'],
    ['Nginx'],
    ['docker.io/Library/nginx'],
    ['ghcr.io/A/b'],
    ['nginx:-tag'],
    ['nginx:.tag'],
    ['nginx:' + 'a'.repeat(129)],
    ['nginx:ta g'],
    ['nginx:t/ag'],
    ['nginx@sha256:abc'],
    ['nginx@sha256:' + D64.toUpperCase()],
    ['nginx@sha256:' + D64 + 'a'],
    ['nginx@md5:' + 'a'.repeat(32)],
    ['nginx@sha512:' + D64],
    ['nginx@' + D64],
    [D64],
    ['a//b'],
    ['/a'],
    ['a/'],
    ['-a'],
    ['a-'],
    ['a..b'],
    ['a.-b'],
    ['a___b'],
    ['_a'],
    ['a b'],
    ['ghcr.io:/a'],
    ['ghcr.io:abc/a'],
    ['-ghcr.io/a'],
    ['ghcr-.io/a'],
    ['[::1/a'],
    ['foo:bar/baz'],
    ['a@sha256:' + D64 + '@sha256:' + D64],
    ['a:t:u'],
    ['http://ghcr.io/a'],
    ['ghcr.io/'],
    ['localhost:5000/'],
    ['a/b:t@'],
    ['é'],
    ['a\n'],
  ])('refuses %j', (input) => {
    const r = parseReference(input);
    expect(r.ok, JSON.stringify(r)).toBe(false);
  });
});
