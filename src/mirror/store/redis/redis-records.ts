import { parseDigest } from '../../../reference/grammar.js';
import type { Descriptor } from '../manifest-media.js';
import type { StoredTag, UploadSession } from '../metadata-store.js';
import type { TagRecord } from '../types.js';

/*
 * How records are written as hash values in Redis, and read back. A value that does not read back as its
 * record (written by another version, or damaged) counts as a cache miss: the durable store answers.
 */

/** A tag's record, and when it was written when known (a record filled from a single read does not know it). */
export interface TagEntry {
  record: TagRecord;
  updatedAt?: number;
}

export function encodeTag(entry: TagEntry): string {
  return JSON.stringify(entry);
}

export function decodeTag(value: string): TagEntry | undefined {
  const e = parse(value) as Partial<TagEntry> | undefined;
  if (!e || typeof e.record !== 'object' || e.record === null || typeof e.record.digest !== 'string' || !parseDigest(e.record.digest)) return undefined;
  if (e.updatedAt !== undefined && typeof e.updatedAt !== 'number') return undefined;
  return e as TagEntry;
}

/** A listed tag needs its write time; undefined when the entry does not have it. */
export function listedTag(tag: string, value: string): StoredTag | undefined {
  const e = decodeTag(value);
  return e?.updatedAt === undefined ? undefined : { tag, record: e.record, updatedAt: e.updatedAt };
}

/** A link's value is when the repository came to hold the content, empty when not known. */
export function decodeLinkedAt(value: string): number | undefined {
  const n = value === '' ? NaN : Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export function decodeDescriptor(value: string): Descriptor | undefined {
  const d = parse(value) as Partial<Descriptor> | undefined;
  return d && typeof d.digest === 'string' && typeof d.mediaType === 'string' && typeof d.size === 'number' ? (d as Descriptor) : undefined;
}

export function decodeUpload(value: string): UploadSession | undefined {
  const s = parse(value) as Partial<UploadSession> | undefined;
  return s && typeof s.id === 'string' && typeof s.writeId === 'string' && typeof s.offset === 'number' && typeof s.repo === 'object' ? (s as UploadSession) : undefined;
}

/** Field of a referrer in its repository's hash: the subject, then the referrer's digest. */
export function referrerField(subject: string, digest: string): string {
  return `${subject} ${digest}`;
}

function parse(value: string): unknown {
  try {
    const v: unknown = JSON.parse(value);
    return typeof v === 'object' && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}
