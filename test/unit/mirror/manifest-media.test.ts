import { describe, expect, it } from 'vitest';
import { MEDIA_TYPES, validateManifest } from '../../../src/mirror/store/manifest-media.js';

const digest = `sha256:${'a'.repeat(64)}`;
const descriptor = (mediaType: string) => ({ mediaType, digest, size: 10 });
const bytes = (doc: unknown) => Buffer.from(JSON.stringify(doc));

function code(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  return undefined;
}

describe('validateManifest', () => {
  it('accepts the four manifest types, with or without the mediaType field, and generic content types', () => {
    const image = { schemaVersion: 2, config: descriptor('application/vnd.oci.image.config.v1+json'), layers: [descriptor('application/vnd.oci.image.layer.v1.tar+gzip')] };
    const index = { schemaVersion: 2, manifests: [{ ...descriptor(MEDIA_TYPES.ociManifest), platform: { architecture: 'amd64', os: 'linux' } }] };
    expect(code(() => validateManifest(bytes({ ...image, mediaType: MEDIA_TYPES.dockerManifest }), MEDIA_TYPES.dockerManifest))).toBeUndefined();
    expect(code(() => validateManifest(bytes(image), MEDIA_TYPES.ociManifest))).toBeUndefined();
    expect(code(() => validateManifest(bytes({ ...image, layers: [], subject: descriptor(MEDIA_TYPES.ociManifest) }), `${MEDIA_TYPES.ociManifest}; charset=utf-8`))).toBeUndefined();
    expect(code(() => validateManifest(bytes({ ...index, mediaType: MEDIA_TYPES.dockerList }), MEDIA_TYPES.dockerList))).toBeUndefined();
    expect(code(() => validateManifest(bytes(index), MEDIA_TYPES.ociIndex))).toBeUndefined();
    expect(code(() => validateManifest(bytes(index), 'application/json'))).toBeUndefined();
    expect(code(() => validateManifest(bytes(image), undefined))).toBeUndefined();
  });

  it('refuses what is not a manifest of its media type', () => {
    const cases: [unknown, string | undefined][] = [
      ['not json', MEDIA_TYPES.ociManifest],
      [[], MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 1, config: descriptor('x'), layers: [] }, MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 2, layers: [] }, MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 2, config: descriptor('x') }, MEDIA_TYPES.dockerManifest],
      [{ schemaVersion: 2, config: { ...descriptor('x'), digest: '../../etc' }, layers: [] }, MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 2, config: { ...descriptor('x'), size: -1 }, layers: [] }, MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 2, manifests: {} }, MEDIA_TYPES.ociIndex],
      [{ schemaVersion: 2, manifests: [] }, MEDIA_TYPES.ociManifest],
      [{ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }, MEDIA_TYPES.dockerList],
      [{ schemaVersion: 2, manifests: [] }, 'text/html'],
      [{ hello: 'world' }, undefined],
    ];
    for (const [doc, mediaType] of cases) {
      const b = typeof doc === 'string' ? Buffer.from(doc) : bytes(doc);
      expect(code(() => validateManifest(b, mediaType)), JSON.stringify(doc)).toBe('UPSTREAM_INVALID_CONTENT');
    }
  });
});
