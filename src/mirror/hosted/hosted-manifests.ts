import { createHash } from 'node:crypto';
import type { Clock } from '../../common/clock.js';
import { MirrorgateError, fail } from '../../common/errors.js';
import { parseDigest } from '../../reference/grammar.js';
import type { LocalBlobStore } from '../local/local-blob-store.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import { manifestMediaType, manifestProblem, manifestReferences, parseManifest } from '../store/manifest-media.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { RepositoryRef } from '../store/types.js';

export interface PushedManifest {
  digest: string;
  /** The manifest's subject, when it has one (answered as `OCI-Subject`). */
  subject?: string;
}

/**
 * Manifest pushes and deletes in hosted repositories. A manifest is accepted only when it is one (of the
 * media type it is sent as) and everything it references is already in the repository; it is stored
 * before its tag is written, so a crash between the two leaves the old tag, never a tag without content.
 */
export class HostedManifests {
  constructor(
    private readonly deps: {
      blobs: LocalBlobStore;
      manifests: LocalManifestStore;
      metadata: Pick<MetadataStore, 'listTags' | 'deleteTag' | 'unlink' | 'deleteReferrer'>;
      clock: Clock;
    },
  ) {}

  async put(repo: RepositoryRef, reference: string, bytes: Buffer, contentType: string | undefined): Promise<PushedManifest> {
    const byDigest = parseDigest(reference);
    const algorithm = byDigest?.algorithm ?? 'sha256';
    const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (byDigest && digest !== reference) throw fail('DIGEST_INVALID', `the manifest's digest is ${digest}, not ${reference}`, { digest: reference });
    const type = contentType?.split(';')[0]?.trim();
    const problem = manifestProblem(bytes, type);
    if (problem) throw fail('MANIFEST_INVALID', `not a manifest: ${problem}`);
    const doc = parseManifest(bytes)!;
    const mediaType = manifestMediaType(bytes, type);
    const refs = manifestReferences(doc);
    for (const d of refs.blobs) {
      if (!parseDigest(d) || !(await this.deps.blobs.stat(repo, d))) throw fail('MANIFEST_BLOB_UNKNOWN', `blob ${d.slice(0, 200)} is not in ${repo.path}`, { digest: d });
    }
    for (const d of refs.manifests) {
      if (!parseDigest(d) || !(await this.deps.manifests.get(repo, { reference: d, accept: [] }))) {
        throw fail('MANIFEST_BLOB_UNKNOWN', `manifest ${d.slice(0, 200)} is not in ${repo.path}`, { digest: d });
      }
    }
    await this.deps.manifests.putManifest(repo, digest, bytes, mediaType);
    if (!byDigest) await this.deps.manifests.writeTag(repo, reference, { digest, mediaType, size: bytes.length, checkedAt: this.deps.clock.now() });
    const subject = typeof doc.subject?.digest === 'string' && parseDigest(doc.subject.digest) ? doc.subject.digest : undefined;
    return subject ? { digest, subject } : { digest };
  }

  /** Removes a manifest from the repository, with the tags pointing at it and its referrer record. */
  async deleteManifest(repo: RepositoryRef, digest: string): Promise<void> {
    const m = await this.deps.manifests.get(repo, { reference: digest, accept: [] });
    if (!m) throw fail('MANIFEST_UNKNOWN', `manifest ${digest} is not in ${repo.path}`);
    const { metadata } = this.deps;
    for (const t of await metadata.listTags(repo)) if (t.record.digest === digest) await metadata.deleteTag(repo, t.tag);
    const subject = parseManifest(m.bytes)?.subject?.digest;
    if (typeof subject === 'string' && parseDigest(subject)) await metadata.deleteReferrer(repo, subject, digest);
    await metadata.unlink(repo, 'manifest', digest);
  }

  async deleteTag(repo: RepositoryRef, tag: string): Promise<void> {
    if (!(await this.deps.metadata.deleteTag(repo, tag))) throw fail('MANIFEST_UNKNOWN', `tag ${tag} is not in ${repo.path}`);
  }

  /** The repository stops holding the blob; its bytes go with the cache lifecycle once nothing holds them. */
  async deleteBlob(repo: RepositoryRef, digest: string): Promise<void> {
    if (!(await this.deps.blobs.holds(repo, digest))) throw new MirrorgateError('BLOB_UNKNOWN', `blob ${digest} is not in ${repo.path}`, { detail: { digest } });
    await this.deps.metadata.unlink(repo, 'blob', digest);
  }
}
