import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer, generateBytes, MediaTypes, sha256 } from '../helpers/images.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { registryClient, type Call, type RegistryAnswer } from '../helpers/registry-client.js';
import { Cleanup } from '../helpers/tmp.js';

/**
 * The OCI distribution-spec conformance suite (its `conformance/` folder: Pull, Push, Content Discovery,
 * Content Management), ported check by check to run against a hosted repository of the mirror: the same
 * requests in the same order, in one namespace as the suite uses it, with the same test data shapes
 * (configs with unknown descriptor fields, a manifest without `mediaType`, referrers pushed before their
 * subject, an index referrer). Where the suite accepts either of two answers, the check names the one the
 * mirror gives. A last block covers the spec's error answers the suite does not send.
 */
const cleanup = new Cleanup();
let mirror: TestMirror;
let call: Call;
let upstreamRequests = 0;

const NAME = 'conformance/main';
const CROSSMOUNT = 'conformance/crossmount';
const OCTET = { 'content-type': 'application/octet-stream' };
const MANIFEST = { 'content-type': MediaTypes.ociManifest };

// ---------------------------------------------------------------------------------------------------------
// Test data, shaped as the suite's setup builds it.

interface TestBlob {
  content: Buffer;
  digest: string;
}
const blob = (content: Buffer): TestBlob => ({ content, digest: sha256(content) });
const json = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc, null, '\t'));
const desc = (mediaType: string, b: TestBlob): { mediaType: string; digest: string; size: number } => ({ mediaType, digest: b.digest, size: b.content.length });

const WORKFLOWS = 5;
/** One config per workflow, each unique (the suite varies `author`). */
const configs = Array.from({ length: WORKFLOWS }, (_, i) =>
  blob(json({ author: `conformance-${i}-${generateBytes(`author-${i}`, 8).toString('hex')}`, architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })),
);
const layer = blob(buildLayer('conformance-layer', 60).bytes);
const configDescriptor = (c: TestBlob) => ({
  ...desc(MediaTypes.ociConfig, c),
  // The suite's config descriptors carry the config inline and a field no spec defines: both must pass.
  data: c.content.toString('base64'),
  newUnspecifiedField: Buffer.from('hello world').toString('base64'),
});
const manifests = configs.map((c) => blob(json({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDescriptor(c), layers: [desc(MediaTypes.ociLayer, layer)] })));
/** No `mediaType` field and no layers: the Content-Type says what it is. */
const emptyLayerManifest = blob(json({ schemaVersion: 2, config: configDescriptor(configs[1]!), layers: [] }));
const EMPTY_LAYER_TAG = 'emptylayer';
const TAG = 'tagtest0';
const nonexistentManifest = '.INVALID_MANIFEST_NAME';
const dummyDigest = sha256('hello world');

const testBlobA = blob(generateBytes('blob-a', 42));
const testBlobB = blob(generateBytes('blob-b', 42));
const chunk1 = testBlobB.content.subarray(0, 22);
const chunk2 = testBlobB.content.subarray(22);
const chunk1Range = `0-${chunk1.length - 1}`;
const chunk2Range = `${chunk1.length}-${testBlobB.content.length - 1}`;

const emptyJson = blob(Buffer.from('{}'));
const refBlobA = blob(Buffer.from('NHL Peanut Butter on my NHL bagel'));
const refBlobB = blob(Buffer.from('NBA Strawberry Jam on my NBA croissant'));
const ARTIFACT_A = 'application/vnd.nhl.peanut.butter.bagel';
const ARTIFACT_B = 'application/vnd.nba.strawberry.jam.croissant';
const ARTIFACT_INDEX = 'application/vnd.food.stand';
const ANNOTATION = 'org.opencontainers.conformance.test';
const subjectOf = (m: TestBlob) => desc(MediaTypes.ociManifest, m);
const annotations: Record<string, string> = {};
function referrer(doc: Record<string, unknown>, note?: string): TestBlob {
  const b = blob(json(note ? { ...doc, annotations: { [ANNOTATION]: note } } : doc));
  if (note) annotations[b.digest] = note;
  return b;
}
/** Artifact type in the config's media type. */
const refsAConfig = referrer({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: desc(ARTIFACT_A, refBlobA), subject: subjectOf(manifests[4]!), layers: [desc(MediaTypes.ociEmpty, emptyJson)] }, 'test config a');
const refsBConfig = referrer({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: desc(ARTIFACT_B, refBlobB), subject: subjectOf(manifests[4]!), layers: [desc(MediaTypes.ociEmpty, emptyJson)] }, 'test config b');
/** Artifact type in `artifactType`, the empty config. */
const refsALayer = referrer({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: ARTIFACT_A, config: desc(MediaTypes.ociEmpty, emptyJson), subject: subjectOf(manifests[4]!), layers: [desc(ARTIFACT_A, refBlobA)] }, 'test layer a');
const refsBLayer = referrer({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: ARTIFACT_B, config: desc(MediaTypes.ociEmpty, emptyJson), subject: subjectOf(manifests[4]!), layers: [desc(ARTIFACT_B, refBlobB)] }, 'test layer b');
/** A referrer of a subject that is never pushed (in this workflow). */
const refsCLayer = referrer({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: ARTIFACT_B, config: desc(MediaTypes.ociEmpty, emptyJson), subject: subjectOf(manifests[3]!), layers: [desc(ARTIFACT_B, refBlobB)] });
const refsIndex = referrer(
  { schemaVersion: 2, mediaType: MediaTypes.ociIndex, artifactType: ARTIFACT_INDEX, manifests: [desc(MediaTypes.ociManifest, refsAConfig), desc(MediaTypes.ociManifest, refsALayer)], subject: subjectOf(manifests[4]!) },
  'test index',
);

// ---------------------------------------------------------------------------------------------------------

/** A referrers answer. */
interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

const at = (name: string, rest: string): string => `/v2/${name}/${rest}`;
const is2xx = (r: RegistryAnswer): boolean => r.status >= 200 && r.status < 300;
const location = (r: RegistryAnswer): string => {
  const l = r.header('location');
  expect(l, `Location on ${r.status}`).toBeTruthy();
  return l!;
};

/** The suite's setup step: POST for a session, then PUT the blob with its digest. */
async function populateBlob(b: TestBlob, name = NAME): Promise<RegistryAnswer> {
  const post = await call('POST', at(name, 'blobs/uploads/'));
  expect(post.status).toBe(202);
  const put = await call('PUT', location(post), { query: { digest: b.digest }, headers: { ...OCTET, 'content-length': String(b.content.length) }, body: b.content });
  expect(put.status).toBe(201);
  return put;
}

async function putManifest(reference: string, m: TestBlob, type: string = MediaTypes.ociManifest): Promise<RegistryAnswer> {
  return call('PUT', at(NAME, `manifests/${reference}`), { headers: { 'content-type': type }, body: m.content });
}

const del = (rest: string): Promise<RegistryAnswer> => call('DELETE', at(NAME, rest));

beforeAll(async () => {
  // An upstream that counts: a hosted repository never asks one anything.
  const upstream: Server = createServer((req, res) => {
    upstreamRequests++;
    req.resume();
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const port = (upstream.address() as AddressInfo).port;
  mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': `http://127.0.0.1:${port}` }, config: { mirror: { hosted: { repositories: ['conformance/**'] } } } }));
  call = registryClient(mirror.url);
}, 60_000);

afterAll(() => cleanup.run());

describe('Pull', () => {
  describe('Setup', () => {
    it('populates the registry with the test blobs, layer and manifests (by tag and by digest)', async () => {
      await populateBlob(configs[0]!);
      await populateBlob(configs[1]!);
      await populateBlob(layer);
      expect((await putManifest(TAG, manifests[0]!)).status).toBe(201);
      expect((await putManifest(manifests[1]!.digest, manifests[1]!)).status).toBe(201);
    });
  });

  describe('Pull blobs', () => {
    it('HEAD request to nonexistent blob should result in 404 response', async () => {
      expect((await call('HEAD', at(NAME, `blobs/${dummyDigest}`))).status).toBe(404);
    });
    it('HEAD request to existing blob should yield 200 (with its Docker-Content-Digest)', async () => {
      const r = await call('HEAD', at(NAME, `blobs/${configs[0]!.digest}`));
      expect(r.status).toBe(200);
      expect(r.header('docker-content-digest')).toBe(configs[0]!.digest);
      expect(r.header('content-length')).toBe(String(configs[0]!.content.length));
    });
    it('GET nonexistent blob should result in 404 response', async () => {
      const r = await call('GET', at(NAME, `blobs/${dummyDigest}`));
      expect(r.status).toBe(404);
      expect(r.code()).toBe('BLOB_UNKNOWN');
    });
    it('GET request to existing blob URL should yield 200', async () => {
      const r = await call('GET', at(NAME, `blobs/${configs[0]!.digest}`));
      expect(r.status).toBe(200);
      expect(r.body.equals(configs[0]!.content)).toBe(true);
    });
  });

  describe('Pull manifests', () => {
    const accept = { accept: MediaTypes.ociManifest };
    it('HEAD request to nonexistent manifest should return 404', async () => {
      expect((await call('HEAD', at(NAME, `manifests/${nonexistentManifest}`))).status).toBe(404);
    });
    it('HEAD request to manifest[0] and manifest[1] paths (digest) should yield 200 response', async () => {
      for (const m of [manifests[0]!, manifests[1]!]) {
        const r = await call('HEAD', at(NAME, `manifests/${m.digest}`), { headers: accept });
        expect(r.status).toBe(200);
        expect(r.header('docker-content-digest')).toBe(m.digest);
        expect(r.header('content-length')).toBe(String(m.content.length));
      }
    });
    it('HEAD request to manifest path (tag) should yield 200 response', async () => {
      const r = await call('HEAD', at(NAME, `manifests/${TAG}`), { headers: accept });
      expect(r.status).toBe(200);
      expect(r.header('docker-content-digest')).toBe(manifests[0]!.digest);
    });
    it('GET nonexistent manifest should return 404', async () => {
      const r = await call('GET', at(NAME, `manifests/${nonexistentManifest}`));
      expect(r.status).toBe(404);
      expect(r.code()).toBe('MANIFEST_UNKNOWN');
    });
    it('GET request to manifest[0] and manifest[1] paths (digest) and to the tag should yield 200 response, the bytes as pushed', async () => {
      for (const [ref, m] of [[manifests[0]!.digest, manifests[0]!], [manifests[1]!.digest, manifests[1]!], [TAG, manifests[0]!]] as const) {
        const r = await call('GET', at(NAME, `manifests/${ref}`), { headers: accept });
        expect(r.status).toBe(200);
        expect(r.body.equals(m.content)).toBe(true);
        expect(r.header('content-type')).toBe(MediaTypes.ociManifest);
      }
    });
  });

  describe('Error codes', () => {
    it('400 or 404 response body should contain OCI-conforming JSON message (a GET with a body and a malformed digest)', async () => {
      const r = await call('GET', at(NAME, 'manifests/sha256:totallywrong'), { headers: MANIFEST, body: 'blablabla' });
      // Neither a tag nor a digest: on a read, the spec's answer is that there is no such manifest.
      expect(r.status).toBe(404);
      expect(r.code()).toBe('MANIFEST_UNKNOWN');
    });
  });

  describe('Teardown', () => {
    it('deletes the manifests, then the config and layer blobs', async () => {
      expect((await del(`manifests/${manifests[0]!.digest}`)).status).toBe(202);
      expect((await del(`manifests/${manifests[1]!.digest}`)).status).toBe(202);
      for (const b of [configs[0]!, configs[1]!, layer]) expect((await del(`blobs/${b.digest}`)).status).toBe(202);
    });
  });
});

describe('Push', () => {
  let last: RegistryAnswer;
  let prev: RegistryAnswer;
  let emptyLayerRef = '';

  describe('Blob Upload Streamed', () => {
    it('PATCH request with blob in body should yield 202 response', async () => {
      const post = await call('POST', at(NAME, 'blobs/uploads/'));
      last = await call('PATCH', location(post), { headers: OCTET, body: testBlobA.content });
      expect(last.status).toBe(202);
      expect(last.header('range')).toBe(`0-${testBlobA.content.length - 1}`);
    });
    it('PUT request to session URL with digest should yield 201 response', async () => {
      const r = await call('PUT', location(last), { query: { digest: testBlobA.digest }, headers: OCTET });
      expect(r.status).toBe(201);
      expect(r.header('location')).toBe(at(NAME, `blobs/${testBlobA.digest}`));
      expect(r.header('docker-content-digest')).toBe(testBlobA.digest);
    });
  });

  describe('Blob Upload Monolithic', () => {
    it('GET nonexistent blob should result in 404 response', async () => {
      expect((await call('GET', at(NAME, `blobs/${dummyDigest}`))).status).toBe(404);
    });
    it('POST request with digest and blob should yield a 201 (a single-request upload)', async () => {
      last = await call('POST', at(NAME, 'blobs/uploads/'), { query: { digest: configs[1]!.digest }, headers: { ...OCTET, 'content-length': String(configs[1]!.content.length) }, body: configs[1]!.content });
      expect(last.status).toBe(201);
      expect(location(last)).toBe(at(NAME, `blobs/${configs[1]!.digest}`));
    });
    it('GET request to blob URL from prior request should yield 200', async () => {
      const r = await call('GET', location(last));
      expect(r.status).toBe(200);
      expect(r.body.equals(configs[1]!.content)).toBe(true);
    });
    it('POST request should yield a session ID', async () => {
      last = await call('POST', at(NAME, 'blobs/uploads/'));
      expect(last.status).toBe(202);
      const id = location(last).split('/').pop();
      expect(last.header('docker-upload-uuid')).toBe(id);
      expect(last.header('content-length')).toBe('0');
    });
    it('PUT upload of a blob should yield a 201 Response', async () => {
      const r = await call('PUT', location(last), { query: { digest: configs[1]!.digest }, headers: { ...OCTET, 'content-length': String(configs[1]!.content.length) }, body: configs[1]!.content });
      expect(r.status).toBe(201);
      location(r);
    });
    it('GET request to existing blob should yield 200 response', async () => {
      expect((await call('GET', at(NAME, `blobs/${configs[1]!.digest}`))).status).toBe(200);
    });
    it('PUT upload of a layer blob should yield a 201 Response, and the layer is readable', async () => {
      const post = await call('POST', at(NAME, 'blobs/uploads/'));
      const r = await call('PUT', location(post), { query: { digest: layer.digest }, headers: { ...OCTET, 'content-length': String(layer.content.length) }, body: layer.content });
      expect(r.status).toBe(201);
      expect((await call('GET', at(NAME, `blobs/${layer.digest}`))).status).toBe(200);
    });
  });

  describe('Blob Upload Chunked', () => {
    it('Out-of-order blob upload should return 416', async () => {
      const post = await call('POST', at(NAME, 'blobs/uploads/'), { headers: { 'content-length': '0' } });
      expect(post.header('oci-chunk-min-length')).toBeUndefined();
      const r = await call('PATCH', location(post), { headers: { ...OCTET, 'content-length': String(chunk2.length), 'content-range': chunk2Range }, body: chunk2 });
      expect(r.status).toBe(416);
      expect(r.header('location')).toBe(location(post));
      expect(r.header('range')).toBe('0-0');
    });
    it('PATCH request with first chunk should return 202', async () => {
      prev = await call('POST', at(NAME, 'blobs/uploads/'), { headers: { 'content-length': '0' } });
      last = await call('PATCH', location(prev), { headers: { ...OCTET, 'content-length': String(chunk1.length), 'content-range': chunk1Range }, body: chunk1 });
      expect(last.status).toBe(202);
      expect(last.header('range')).toBe(chunk1Range);
    });
    it('Retry previous blob chunk should return 416', async () => {
      const r = await call('PATCH', location(prev), { headers: { ...OCTET, 'content-length': String(chunk1.length), 'content-range': chunk1Range }, body: chunk1 });
      expect(r.status).toBe(416);
      expect(r.header('range')).toBe(chunk1Range);
    });
    it('Get on stale blob upload should return 204 with a range and location', async () => {
      last = await call('GET', location(prev));
      expect(last.status).toBe(204);
      expect(last.header('location')).toBe(location(prev));
      expect(last.header('range')).toBe(chunk1Range);
    });
    it('PATCH request with second chunk should return 202', async () => {
      last = await call('PATCH', location(last), { headers: { ...OCTET, 'content-length': String(chunk2.length), 'content-range': chunk2Range }, body: chunk2 });
      expect(last.status).toBe(202);
      expect(last.header('range')).toBe(`0-${testBlobB.content.length - 1}`);
    });
    it('PUT request with digest should return 201', async () => {
      const r = await call('PUT', location(last), { query: { digest: testBlobB.digest }, headers: { ...OCTET, 'content-length': '0' } });
      expect(r.status).toBe(201);
      expect(location(r)).toBe(at(NAME, `blobs/${testBlobB.digest}`));
      expect((await call('GET', location(r))).body.equals(testBlobB.content)).toBe(true);
    });
    it('(the suite\'s older form) PUT request with the final chunk and its Content-Range should return 201', async () => {
      const post = await call('POST', at(NAME, 'blobs/uploads/'), { headers: { 'content-length': '0' } });
      const patch = await call('PATCH', location(post), { headers: { ...OCTET, 'content-range': chunk1Range }, body: chunk1 });
      const r = await call('PUT', location(patch), { query: { digest: testBlobB.digest }, headers: { ...OCTET, 'content-range': chunk2Range }, body: chunk2 });
      expect(r.status).toBe(201);
    });
  });

  describe('Cross-Repository Blob Mount', () => {
    it('Cross-mounting of a blob without the from argument should yield session id', async () => {
      const r = await call('POST', at(CROSSMOUNT, 'blobs/uploads/'), { query: { mount: dummyDigest } });
      expect(r.status).toBe(202);
      expect(location(r)).toMatch(new RegExp(`^/v2/${CROSSMOUNT}/blobs/uploads/`));
    });
    it('POST request to mount another repository\'s blob should return 201', async () => {
      last = await call('POST', at(CROSSMOUNT, 'blobs/uploads/'), { query: { mount: testBlobA.digest, from: NAME } });
      expect(last.status).toBe(201);
      expect(last.header('docker-content-digest')).toBe(testBlobA.digest);
    });
    it('GET request to test digest within cross-mount namespace should return 200', async () => {
      expect(location(last)).toBe(`/v2/${CROSSMOUNT}/blobs/${testBlobA.digest}`);
      const r = await call('GET', location(last));
      expect(r.status).toBe(200);
      expect(r.body.equals(testBlobA.content)).toBe(true);
    });
    it('Cross-mounting of nonexistent blob should yield session id', async () => {
      const r = await call('POST', at(CROSSMOUNT, 'blobs/uploads/'), { query: { mount: dummyDigest, from: NAME } });
      expect(r.status).toBe(202);
      expect(location(r)).toMatch(new RegExp(`^/v2/${CROSSMOUNT}/blobs/uploads/`));
    });
    it('Cross-mounting without from (no automatic content discovery) should return a 202', async () => {
      const r = await call('POST', at(CROSSMOUNT, 'blobs/uploads/'), { query: { mount: testBlobA.digest } });
      expect(r.status).toBe(202);
    });
  });

  describe('Manifest Upload', () => {
    it('GET nonexistent manifest should return 404', async () => {
      expect((await call('GET', at(NAME, `manifests/${nonexistentManifest}`))).status).toBe(404);
    });
    it('PUT should accept a manifest upload (four tags), with Location and Docker-Content-Digest', async () => {
      for (let i = 0; i < 4; i++) {
        const r = await putManifest(`test${i}`, manifests[1]!);
        expect(r.status).toBe(201);
        expect(location(r)).toBe(at(NAME, `manifests/${manifests[1]!.digest}`));
        expect(r.header('docker-content-digest')).toBe(manifests[1]!.digest);
      }
    });
    it('Registry should accept a manifest upload with no layers', async () => {
      const r = await putManifest(EMPTY_LAYER_TAG, emptyLayerManifest);
      expect(r.status).toBe(201);
      emptyLayerRef = location(r);
    });
    it('GET request to manifest URL (digest) should yield 200 response', async () => {
      const r = await call('GET', at(NAME, `manifests/${manifests[1]!.digest}`), { headers: { accept: MediaTypes.ociManifest } });
      expect(r.status).toBe(200);
      // A manifest without a mediaType field is served as what it was pushed as.
      const e = await call('GET', emptyLayerRef, { headers: { accept: MediaTypes.ociManifest } });
      expect(e.status).toBe(200);
      expect(e.header('content-type')).toBe(MediaTypes.ociManifest);
      expect(e.body.equals(emptyLayerManifest.content)).toBe(true);
    });
  });

  describe('Teardown', () => {
    it('Delete manifest created in tests (and the one with no layers)', async () => {
      expect((await del(`manifests/${manifests[1]!.digest}`)).status).toBe(202);
      expect((await del(`manifests/${emptyLayerManifest.digest}`)).status).toBe(202);
    });
    it('Delete config blob created in tests', async () => {
      expect((await del(`blobs/${configs[1]!.digest}`)).status).toBe(202);
    });
    it('Delete layer blob created in setup', async () => {
      expect((await del(`blobs/${layer.digest}`)).status).toBe(202);
    });
  });
});

describe('Content Discovery', () => {
  let tagList: string[] = [];
  let numTags = 4;
  const tags = (r: RegistryAnswer): string[] => r.json<{ tags: string[] }>().tags;

  describe('Setup', () => {
    it('Populate registry with test blob, layer and tags', async () => {
      await populateBlob(configs[2]!);
      await populateBlob(layer);
      for (let i = 0; i < numTags; i++) expect(is2xx(await putManifest(`test${i}`, manifests[2]!))).toBe(true);
      tagList = tags(await call('GET', at(NAME, 'tags/list')));
      expect(tagList).toEqual(['test0', 'test1', 'test2', 'test3']);
    });
    it('References setup: referrers pushed before and after their subject, and of a subject never pushed, each answered with OCI-Subject', async () => {
      expect(emptyJson.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
      await populateBlob(emptyJson);
      await populateBlob(refBlobA);
      for (const [m, type] of [[refsAConfig, MediaTypes.ociManifest], [refsALayer, MediaTypes.ociManifest], [refsIndex, MediaTypes.ociIndex]] as const) {
        const r = await putManifest(m.digest, m, type);
        expect(r.status).toBe(201);
        expect(r.header('oci-subject')).toBe(manifests[4]!.digest);
      }
      await populateBlob(configs[4]!);
      await populateBlob(layer);
      expect((await putManifest(TAG, manifests[4]!)).status).toBe(201);
      await populateBlob(refBlobB);
      for (const m of [refsBConfig, refsBLayer]) {
        const r = await putManifest(m.digest, m);
        expect(r.status).toBe(201);
        expect(r.header('oci-subject')).toBe(manifests[4]!.digest);
      }
      const c = await putManifest(refsCLayer.digest, refsCLayer);
      expect(c.status).toBe(201);
      expect(c.header('oci-subject')).toBe(manifests[3]!.digest);
    });
  });

  describe('Test content discovery endpoints (listing tags)', () => {
    it('GET request to list tags should yield 200 response', async () => {
      const r = await call('GET', at(NAME, 'tags/list'));
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ name: NAME, tags: ['tagtest0', 'test0', 'test1', 'test2', 'test3'] });
      tagList = tags(r);
      numTags = tagList.length;
    });
    it('GET number of tags should be limitable by `n` query parameter', async () => {
      const n = Math.floor(numTags / 2);
      const r = await call('GET', at(NAME, 'tags/list'), { query: { n: String(n) } });
      expect(r.status).toBe(200);
      tagList = tags(r);
      expect(tagList).toHaveLength(n);
      expect(r.header('link')).toBe(`</v2/${NAME}/tags/list?n=${n}&last=${tagList[n - 1]}>; rel="next"`);
    });
    it('GET start of tag is set by `last` query parameter', async () => {
      const n = Math.floor(numTags / 2);
      const first = tags(await call('GET', at(NAME, 'tags/list'), { query: { n: String(n) } }));
      const r = await call('GET', at(NAME, 'tags/list'), { query: { n: String(n), last: first[n - 1]! } });
      expect(r.status).toBe(200);
      const page = tags(r);
      expect(page.length).toBeLessThanOrEqual(n);
      expect(page).toEqual(['test1', 'test2']);
      // n=0: an empty list and no Link header.
      const none = await call('GET', at(NAME, 'tags/list'), { query: { n: '0' } });
      expect(tags(none)).toEqual([]);
      expect(none.header('link')).toBeUndefined();
    });
  });

  describe('Test content discovery endpoints (listing references)', () => {
    it('GET request to nonexistent blob should result in empty 200 response', async () => {
      const r = await call('GET', at(NAME, `referrers/${dummyDigest}`));
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe(MediaTypes.ociIndex);
      expect(r.json<Index>().manifests).toEqual([]);
    });
    it('GET request to existing blob should yield 200: five referrers, each with its annotations and artifact type', async () => {
      const r = await call('GET', at(NAME, `referrers/${manifests[4]!.digest}`));
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe(MediaTypes.ociIndex);
      const index = r.json<Index>();
      expect(index.schemaVersion).toBe(2);
      expect(index.manifests).toHaveLength(5);
      expect(new Set(index.manifests.map((m) => m.digest)).size).toBe(5);
      for (const m of index.manifests) {
        expect(Object.keys(m.annotations ?? {})).toHaveLength(1);
        expect(m.annotations![ANNOTATION]).toBe(annotations[m.digest]);
      }
      const byDigest = new Map(index.manifests.map((m) => [m.digest, m]));
      expect(byDigest.get(refsAConfig.digest)).toMatchObject({ artifactType: ARTIFACT_A, mediaType: MediaTypes.ociManifest, size: refsAConfig.content.length });
      expect(byDigest.get(refsALayer.digest)?.artifactType).toBe(ARTIFACT_A);
      expect(byDigest.get(refsIndex.digest)).toMatchObject({ artifactType: ARTIFACT_INDEX, mediaType: MediaTypes.ociIndex });
    });
    it('GET request to existing blob with filter should yield 200, the filter applied', async () => {
      const r = await call('GET', at(NAME, `referrers/${manifests[4]!.digest}`), { query: { artifactType: ARTIFACT_A } });
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe(MediaTypes.ociIndex);
      expect(r.header('oci-filters-applied')).toBe('artifactType');
      const index = r.json<Index>();
      expect(index.manifests.map((m) => m.digest).sort()).toEqual([refsAConfig.digest, refsALayer.digest].sort());
      for (const m of index.manifests) expect(m.annotations![ANNOTATION]).toBe(annotations[m.digest]);
    });
    it('GET request to missing manifest should yield 200', async () => {
      const r = await call('GET', at(NAME, `referrers/${manifests[3]!.digest}`));
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe(MediaTypes.ociIndex);
      expect(r.json<Index>().manifests.map((m) => m.digest)).toEqual([refsCLayer.digest]);
    });
  });

  describe('Teardown', () => {
    it('Delete created manifest & associated tags', async () => {
      const references = [refsIndex.digest, manifests[2]!.digest, manifests[4]!.digest, refsAConfig.digest, refsALayer.digest, TAG, refsBConfig.digest, refsBLayer.digest, refsCLayer.digest];
      const statuses = [];
      for (const ref of references) statuses.push((await del(`manifests/${ref}`)).status);
      // The tag went with the manifest it pointed at.
      expect(statuses).toEqual([202, 202, 202, 202, 202, 404, 202, 202, 202]);
      expect((await call('GET', at(NAME, `referrers/${manifests[4]!.digest}`))).json<Index>().manifests).toEqual([]);
    });
    it('Delete config blob and layer blob created in tests', async () => {
      expect((await del(`blobs/${configs[2]!.digest}`)).status).toBe(202);
      expect((await del(`blobs/${layer.digest}`)).status).toBe(202);
    });
    it('References teardown', async () => {
      for (const b of [configs[4]!, refBlobA, refBlobB, emptyJson]) expect((await del(`blobs/${b.digest}`)).status).toBe(202);
    });
  });
});

describe('Content Management', () => {
  let numTags = 0;
  const tagCount = async (): Promise<number> => {
    const r = await call('GET', at(NAME, 'tags/list'));
    expect(r.status).toBe(200);
    return r.json<{ tags: string[] }>().tags.length;
  };

  describe('Setup', () => {
    it('Populate registry with test config blob, layer and tag', async () => {
      await populateBlob(configs[3]!);
      await populateBlob(layer);
      expect(is2xx(await putManifest(TAG, manifests[3]!))).toBe(true);
    });
    it('Check how many tags there are before anything gets deleted', async () => {
      numTags = await tagCount();
      expect(numTags).toBe(1);
    });
  });

  describe('Manifest delete', () => {
    it('DELETE request to manifest tag should return 202', async () => {
      const r = await del(`manifests/${TAG}`);
      expect(r.status).toBe(202);
      expect((await call('GET', at(NAME, `manifests/${TAG}`))).status).toBe(404);
      // The manifest stays, by digest.
      expect((await call('GET', at(NAME, `manifests/${manifests[3]!.digest}`))).status).toBe(200);
    });
    it('DELETE request to manifest (digest) should yield 202 response unless already deleted', async () => {
      expect((await del(`manifests/${manifests[3]!.digest}`)).status).toBe(202);
    });
    it('GET request to deleted manifest URL should yield 404 response', async () => {
      expect((await call('GET', at(NAME, `manifests/${manifests[3]!.digest}`))).status).toBe(404);
    });
    it('GET request to tags list should reflect manifest deletion (200, an empty list: the repository still exists)', async () => {
      expect(await tagCount()).toBeLessThan(numTags);
    });
  });

  describe('Blob delete', () => {
    it('DELETE request to blob URL should yield 202 response', async () => {
      expect((await del(`blobs/${configs[3]!.digest}`)).status).toBe(202);
      expect((await del(`blobs/${layer.digest}`)).status).toBe(202);
    });
    it('GET request to deleted blob URL should yield 404 response', async () => {
      expect((await call('GET', at(NAME, `blobs/${configs[3]!.digest}`))).status).toBe(404);
      // Deleting again: not found.
      expect((await del(`blobs/${configs[3]!.digest}`)).status).toBe(404);
    });
  });
});

describe('the spec\'s error answers the suite does not send', () => {
  it('a reference that is neither a tag nor a digest: 404 MANIFEST_UNKNOWN on GET and HEAD, 400 TAG_INVALID or DIGEST_INVALID on PUT', async () => {
    for (const ref of ['-bad', '.hidden', 'a'.repeat(129), 'sha256:zz', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`]) {
      const get = await call('GET', at(NAME, `manifests/${ref}`));
      expect([get.status, get.code()], ref).toEqual([404, 'MANIFEST_UNKNOWN']);
      expect((await call('HEAD', at(NAME, `manifests/${ref}`))).status, ref).toBe(404);
      const put = await putManifest(ref, manifests[0]!);
      expect([put.status, put.code()], ref).toEqual([400, ref.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID']);
    }
  });

  it('a manifest whose blobs are not in the repository: 404 MANIFEST_BLOB_UNKNOWN with the digest in detail', async () => {
    const r = await putManifest('orphan', manifests[0]!);
    expect(r.status).toBe(404);
    expect(r.code()).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(r.json<{ errors: { detail: { digest: string } }[] }>().errors[0]!.detail.digest).toBe(configs[0]!.digest);
  });

  it('a manifest body that is not one, or not of its Content-Type: 400 MANIFEST_INVALID; larger than 4 MiB: 413', async () => {
    await populateBlob(configs[0]!);
    await populateBlob(layer);
    expect((await call('PUT', at(NAME, 'manifests/bad'), { headers: MANIFEST, body: 'blablabla' })).code()).toBe('MANIFEST_INVALID');
    const asIndex = await putManifest('bad', manifests[0]!, MediaTypes.ociIndex);
    expect([asIndex.status, asIndex.code()]).toEqual([400, 'MANIFEST_INVALID']);
    const huge = await call('PUT', at(NAME, 'manifests/huge'), { headers: MANIFEST, body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) });
    expect(huge.status).toBe(413);
    expect((await call('GET', at(NAME, 'manifests/bad'))).status).toBe(404);
  });

  it('a manifest pushed by a digest it does not have: 400 DIGEST_INVALID, nothing stored', async () => {
    const r = await putManifest(manifests[1]!.digest, manifests[0]!);
    expect([r.status, r.code()]).toEqual([400, 'DIGEST_INVALID']);
    expect((await call('GET', at(NAME, `manifests/${manifests[0]!.digest}`))).status).toBe(404);
  });

  it('closing an upload with a wrong digest, without one, or with a malformed one: 400 DIGEST_INVALID', async () => {
    for (const query of [{ digest: dummyDigest }, {} as Record<string, string>, { digest: 'sha256:nope' }]) {
      const post = await call('POST', at(NAME, 'blobs/uploads/'));
      const r = await call('PUT', location(post), { query, headers: OCTET, body: testBlobA.content });
      expect([r.status, r.code()], JSON.stringify(query)).toEqual([400, 'DIGEST_INVALID']);
    }
    const mono = await call('POST', at(NAME, 'blobs/uploads/'), { query: { digest: dummyDigest }, headers: OCTET, body: testBlobA.content });
    expect([mono.status, mono.code()]).toEqual([400, 'DIGEST_INVALID']);
  });

  it('an unknown or cancelled upload: 404 BLOB_UPLOAD_UNKNOWN on GET, PATCH, PUT and DELETE', async () => {
    const post = await call('POST', at(NAME, 'blobs/uploads/'));
    const loc = location(post);
    expect((await call('DELETE', loc)).status).toBe(204);
    const unknown = at(NAME, `blobs/uploads/${'0'.repeat(32)}`);
    for (const url of [loc, unknown]) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
        const r = await call(method, url, { query: method === 'PUT' ? { digest: testBlobA.digest } : {}, ...(method === 'PATCH' ? { headers: OCTET, body: 'x' } : {}) });
        expect([r.status, r.code()], `${method} ${url}`).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
      }
    }
  });

  it('a malformed Content-Range: 416 with the upload\'s current range', async () => {
    const post = await call('POST', at(NAME, 'blobs/uploads/'));
    for (const range of ['bytes 0-9/10', '5-2', 'abc', '0-99999999999999999999']) {
      const r = await call('PATCH', location(post), { headers: { ...OCTET, 'content-range': range }, body: 'x' });
      expect(r.status, range).toBe(416);
    }
    expect((await call('GET', location(post))).header('range')).toBe('0-0');
  });

  it('a chunk shorter than its Content-Range: 400 SIZE_INVALID', async () => {
    const post = await call('POST', at(NAME, 'blobs/uploads/'));
    const r = await call('PATCH', location(post), { headers: { ...OCTET, 'content-range': '0-99' }, body: 'only ten b' });
    expect([r.status, r.code()]).toEqual([400, 'SIZE_INVALID']);
  });

  it('referrers of a malformed digest: 400; deletes of unknown content: 404 MANIFEST_UNKNOWN or BLOB_UNKNOWN', async () => {
    expect((await call('GET', at(NAME, 'referrers/sha256:nope'))).status).toBe(400);
    const m = await del(`manifests/${dummyDigest}`);
    expect([m.status, m.code()]).toEqual([404, 'MANIFEST_UNKNOWN']);
    const t = await del('manifests/no-such-tag');
    expect([t.status, t.code()]).toEqual([404, 'MANIFEST_UNKNOWN']);
    const b = await del(`blobs/${dummyDigest}`);
    expect([b.status, b.code()]).toEqual([404, 'BLOB_UNKNOWN']);
  });

  it('tags of a repository that holds nothing: 404 NAME_UNKNOWN', async () => {
    const r = await call('GET', at('conformance/never-pushed', 'tags/list'));
    expect([r.status, r.code()]).toEqual([404, 'NAME_UNKNOWN']);
  });

  it('the catalog lists the hosted repositories, with n and last', async () => {
    const all = await call('GET', '/v2/_catalog');
    expect(all.json<{ repositories: string[] }>().repositories).toEqual([CROSSMOUNT, NAME]);
    const page = await call('GET', '/v2/_catalog', { query: { n: '1' } });
    expect(page.json()).toEqual({ repositories: [CROSSMOUNT] });
    expect(page.header('link')).toContain(`last=${encodeURIComponent(CROSSMOUNT)}`);
    expect((await call('GET', '/v2/_catalog', { query: { n: '1', last: CROSSMOUNT } })).json()).toEqual({ repositories: [NAME] });
  });

  it('no request of any workflow went to an upstream', () => {
    expect(upstreamRequests).toBe(0);
  });
});
