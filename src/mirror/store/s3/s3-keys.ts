import { fail } from '../../../common/errors.js';
import { parseDigest } from '../../../reference/grammar.js';

/** The content stores of a storage: one for blobs, one for manifest bytes. */
export type ContentKind = 'blobs' | 'manifests';

/** A bucket and the key prefix (empty, or ending in `/`) everything of one storage lives under. */
export interface S3Location {
  bucket: string;
  prefix: string;
}

/** Segment keys carry their start offset, zero-padded so that key order is offset order. */
const OFFSET_DIGITS = 15;

/**
 * Where things live in the bucket. Every key is built from validated digests and write ids only.
 *
 *   <prefix>blobs/<alg>/<hex>                     blob content (layers, configs)
 *   <prefix>manifests/<alg>/<hex>                 manifest bytes, exactly as served upstream
 *   <prefix>uploads/<kind>-<ms>-<random>/<offset>  the parts of a write in progress, one object each
 *   <prefix>state/claims/<owner>-<token>.json     who uses the storage (mirrors, `mirrorgate gc`)
 *
 * `<alg>/<hex>` sorts as `<alg>:<hex>` does for the algorithms there are (sha256, sha512), so a listing
 * of keys is a listing in digest order.
 */
export class S3Keys {
  constructor(readonly location: S3Location) {}

  get bucket(): string {
    return this.location.bucket;
  }

  contentPrefix(kind: ContentKind): string {
    return `${this.location.prefix}${kind}/`;
  }

  /** DIGEST_INVALID unless `digest` is a digest of a known algorithm. */
  contentKey(kind: ContentKind, digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    return `${this.contentPrefix(kind)}${d.algorithm}/${d.hex}`;
  }

  /** Where a listing in digest order starts after `after` (exclusive); `after` need not be a valid digest. */
  contentStartAfter(kind: ContentKind, after: string): string {
    return `${this.contentPrefix(kind)}${after.replace(':', '/')}`;
  }

  /** The digest a content key names, or undefined for any other key. */
  digestOfKey(kind: ContentKind, key: string): string | undefined {
    const rest = key.slice(this.contentPrefix(kind).length);
    if (!key.startsWith(this.contentPrefix(kind)) || rest.split('/').length !== 2) return undefined;
    return parseDigest(rest.replace('/', ':'))?.digest;
  }

  uploadsPrefix(): string {
    return `${this.location.prefix}uploads/`;
  }

  /** Key prefix of one write's parts. */
  writePrefix(id: string): string {
    return `${this.uploadsPrefix()}${id}/`;
  }

  segmentKey(id: string, offset: number): string {
    return `${this.writePrefix(id)}${String(offset).padStart(OFFSET_DIGITS, '0')}`;
  }

  /** The write id and offset a segment key names, or undefined for any other key. */
  parseSegmentKey(key: string): { id: string; offset: number } | undefined {
    const m = /^([a-z]+-\d+-[0-9a-f]{16})\/(\d{15})$/.exec(key.slice(this.uploadsPrefix().length));
    if (!key.startsWith(this.uploadsPrefix()) || !m) return undefined;
    return { id: m[1]!, offset: Number(m[2]) };
  }

  claimsPrefix(): string {
    return `${this.location.prefix}state/claims/`;
  }

  claimKey(name: string): string {
    return `${this.claimsPrefix()}${name}.json`;
  }

  probeKey(token: string): string {
    return `${this.location.prefix}state/probe-${token}`;
  }
}

/** `s3://bucket/prefix`, for logs. */
export function describeLocation(location: S3Location, endpoint: string | undefined): string {
  return `s3://${location.bucket}/${location.prefix}${endpoint ? ` at ${endpoint}` : ''}`;
}
