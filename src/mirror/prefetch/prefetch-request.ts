import { fail, MirrorgateError } from '../../common/errors.js';
import { isValidRepositoryPath, isValidTag, parseDigest } from '../../reference/grammar.js';

/** Most images in one request: more than any pod has containers. */
export const PREFETCH_MAX_IMAGES = 64;
/** Largest request body (64 images of the longest names fit). */
export const PREFETCH_MAX_BODY = 64 * 1024;
const IMAGE_MAX_LENGTH = 512;

/** One image of a prefetch request: as sent, the repository name a client would use, and what is fetched. */
export interface PrefetchItem {
  image: string;
  name: string;
  /** The digest when the image has one (what a kubelet then pulls), else the tag. */
  reference: string;
}

function malformed(message: string): MirrorgateError {
  return new MirrorgateError('UNSUPPORTED', message, { status: 400 });
}

/**
 * Parses `{"images": ["<name>:<tag>", "<name>@<digest>", "<name>:<tag>@<digest>", ...]}`, names as a client pulls
 * them from the mirror (`library/nginx:1.27`, `ghcr.io/org/app@sha256:...`). Pure; throws the first problem, so a
 * request with a bad entry is refused whole and nothing of it is queued.
 */
export function parsePrefetchRequest(body: Buffer): PrefetchItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw malformed('the body is not JSON');
  }
  const images = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { images?: unknown }).images : undefined;
  if (!Array.isArray(images)) throw malformed('the body must be {"images": ["<name>:<tag>", ...]}');
  if (images.length === 0 || images.length > PREFETCH_MAX_IMAGES) throw malformed(`between 1 and ${PREFETCH_MAX_IMAGES} images, not ${images.length}`);
  return images.map(parseImage);
}

function parseImage(value: unknown): PrefetchItem {
  if (typeof value !== 'string' || value.length === 0 || value.length > IMAGE_MAX_LENGTH) {
    throw fail('NAME_INVALID', `each image is a string of 1 to ${IMAGE_MAX_LENGTH} characters`);
  }
  const shown = JSON.stringify(value.slice(0, 200));
  const at = value.indexOf('@');
  const beforeDigest = at < 0 ? value : value.slice(0, at);
  const digest = at < 0 ? undefined : value.slice(at + 1);
  const colon = beforeDigest.lastIndexOf(':');
  const tag = colon > beforeDigest.lastIndexOf('/') ? beforeDigest.slice(colon + 1) : undefined;
  const name = tag === undefined ? beforeDigest : beforeDigest.slice(0, colon);
  if (!isValidRepositoryPath(name)) throw fail('NAME_INVALID', `${shown}: invalid repository name`);
  if (tag !== undefined && !isValidTag(tag)) throw fail('TAG_INVALID', `${shown}: invalid tag`);
  if (digest !== undefined && !parseDigest(digest)) throw fail('DIGEST_INVALID', `${shown}: invalid digest (sha256 or sha512, lowercase hex)`);
  const reference = digest ?? tag;
  if (reference === undefined) throw fail('TAG_INVALID', `${shown}: needs a tag or a digest`);
  return { image: value, name, reference };
}
