import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { parseDigest } from '../../reference/grammar.js';
import { ALL_MANIFEST_TYPES, MANIFEST_MAX_BYTES, manifestMediaType } from '../store/manifest-media.js';
import type { RepositoryRef } from '../store/types.js';
import type { FetchedManifest, ImageSource } from './fetch-image.js';

export interface MirrorHttpSourceOptions {
  /** The mirror's base URL, e.g. `https://mirror.internal.example`. */
  mirror: URL;
  repo: RepositoryRef;
  /** `Authorization` header value for the mirror (Basic), when it needs credentials. */
  authorization?: string | undefined;
  dispatcher?: Dispatcher | undefined;
}

/**
 * An image fetched through a running mirror over its registry API, as any client pulls (`?ns=` names the
 * upstream). Every manifest and blob is checked against its digest here too.
 */
export class MirrorHttpSource implements ImageSource {
  constructor(private readonly opts: MirrorHttpSourceOptions) {}

  async manifest(reference: string): Promise<FetchedManifest> {
    const res = await this.get(`manifests/${reference}`, { accept: ALL_MANIFEST_TYPES.join(', ') });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MANIFEST_MAX_BYTES) {
        res.body.destroy();
        throw new Error(`manifest ${reference} is larger than ${MANIFEST_MAX_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    const bytes = Buffer.concat(chunks);
    const claimed = headerOf(res.headers, 'docker-content-digest');
    const expected = parseDigest(reference) ? reference : claimed;
    if (!expected || !parseDigest(expected)) throw new Error(`the mirror sent manifest ${reference} without its digest`);
    checkDigest(expected, createHash(expected.slice(0, expected.indexOf(':'))).update(bytes), `manifest ${reference}`);
    return { digest: expected, mediaType: manifestMediaType(bytes, headerOf(res.headers, 'content-type')), bytes };
  }

  async blob(digest: string): Promise<void> {
    const res = await this.get(`blobs/${digest}`, {});
    const hash = createHash(digest.slice(0, digest.indexOf(':')));
    for await (const chunk of res.body as AsyncIterable<Buffer>) hash.update(chunk);
    checkDigest(digest, hash, `blob ${digest}`);
  }

  private async get(resource: string, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const { mirror, repo, authorization, dispatcher } = this.opts;
    const url = new URL(`/v2/${repo.path}/${resource}`, mirror);
    url.searchParams.set('ns', repo.upstream);
    const res = await request(url, {
      method: 'GET',
      headers: { ...headers, ...(authorization ? { authorization } : {}) },
      ...(dispatcher ? { dispatcher } : {}),
    });
    if (res.statusCode === 200) return res;
    const text = (await res.body.text()).slice(0, 2000);
    let message = text;
    try {
      const first = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
      if (first) message = `${first.code ?? ''} ${first.message ?? ''}`.trim();
    } catch {
      // not the error envelope: show the start of the body
    }
    throw new Error(`the mirror answered ${res.statusCode} for ${repo.upstream}/${repo.path} ${resource}: ${message}`);
  }
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function checkDigest(expected: string, hash: ReturnType<typeof createHash>, what: string): void {
  const actual = `${expected.slice(0, expected.indexOf(':'))}:${hash.digest('hex')}`;
  if (actual !== expected) throw new Error(`${what}: the mirror sent bytes that hash to ${actual}`);
}
