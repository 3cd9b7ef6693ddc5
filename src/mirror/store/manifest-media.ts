/** Manifest media types and what can be read out of a manifest's JSON. */

import { MirrorgateError } from '../../common/errors.js';
import { DIGEST_RE } from '../../reference/grammar.js';

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

/** What the mirror asks upstreams for: everything, so multi-arch images stay multi-arch. */
export const ALL_MANIFEST_TYPES = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
];

export const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);

/** Largest manifest the mirror accepts (distribution uses 4 MiB too). */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
}

export interface ParsedManifest {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** Parses manifest JSON; undefined when the bytes are not a JSON object. */
export function parseManifest(bytes: Buffer): ParsedManifest | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as ParsedManifest) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The media type of stored manifest bytes: the `mediaType` field when present, else the upstream's
 * Content-Type, else inferred from the shape (OCI allows leaving the field out).
 */
export function manifestMediaType(bytes: Buffer, contentType?: string): string {
  const doc = parseManifest(bytes);
  if (doc && typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
  const ct = contentType?.split(';')[0]?.trim();
  if (ct && ct !== 'application/json' && ct !== 'application/octet-stream') return ct;
  if (doc && Array.isArray(doc.manifests)) return MEDIA_TYPES.ociIndex;
  return MEDIA_TYPES.ociManifest;
}

/** A descriptor as the manifest types require one: media type, digest-shaped digest, non-negative size. */
function isDescriptor(d: unknown): boolean {
  if (typeof d !== 'object' || d === null) return false;
  const { mediaType, digest, size } = d as Record<string, unknown>;
  return (
    typeof mediaType === 'string' &&
    typeof digest === 'string' &&
    digest.length <= 256 &&
    DIGEST_RE.test(digest) &&
    typeof size === 'number' &&
    Number.isSafeInteger(size) &&
    size >= 0
  );
}

/**
 * Checks that bytes from an upstream are a manifest of the media type they were served as (`mediaType`, the
 * Content-Type; a missing or generic one is inferred from the shape), before they are stored or served: a
 * JSON object of one of the four manifest types, `schemaVersion` 2, a `mediaType` field (when present)
 * equal to that type, and the descriptors the type requires (config and layers for an image manifest,
 * manifests for an index). Throws UPSTREAM_INVALID_CONTENT.
 */
export function validateManifest(bytes: Buffer, mediaType: string | undefined): void {
  const problem = manifestProblem(bytes, mediaType);
  if (problem) throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `upstream sent a manifest that is not one: ${problem}; not stored`);
}

/** Why bytes are not a manifest of `mediaType` (see validateManifest), or undefined when they are one. */
export function manifestProblem(bytes: Buffer, mediaType: string | undefined): string | undefined {
  const doc = parseManifest(bytes);
  if (!doc) return 'not a JSON object';
  const declared = mediaType?.split(';')[0]?.trim();
  const type = declared && declared !== 'application/json' && declared !== 'application/octet-stream' ? declared : manifestMediaType(bytes);
  if (!(ALL_MANIFEST_TYPES as string[]).includes(type)) return 'its media type is not a manifest type';
  if ((doc as { schemaVersion?: unknown }).schemaVersion !== 2) return 'schemaVersion is not 2';
  if (doc.mediaType !== undefined && doc.mediaType !== type) return `served as ${type} but its mediaType field differs`;
  if (INDEX_TYPES.has(type)) {
    if (!Array.isArray(doc.manifests) || !doc.manifests.every(isDescriptor)) return 'manifests is not a list of descriptors';
  } else {
    if (!isDescriptor(doc.config)) return 'config is not a descriptor';
    if (!Array.isArray(doc.layers) || !doc.layers.every(isDescriptor)) return 'layers is not a list of descriptors';
  }
  if (doc.subject !== undefined && !isDescriptor(doc.subject)) return 'subject is not a descriptor';
  return undefined;
}

/** Every digest a manifest points at (config, layers, children, subject excluded). */
export function referencedDigests(doc: ParsedManifest): string[] {
  const out: string[] = [];
  if (doc.config?.digest) out.push(doc.config.digest);
  for (const l of doc.layers ?? []) if (l?.digest) out.push(l.digest);
  for (const m of doc.manifests ?? []) if (m?.digest) out.push(m.digest);
  return out;
}

/** Whether a client's Accept list admits a media type. An empty list means "anything" (old clients). */
export function accepts(accept: string[], mediaType: string): boolean {
  if (accept.length === 0) return true;
  return accept.some((a) => a === mediaType || a === '*/*' || a === 'application/*');
}

/** What a manifest points at, split by what holds it: blobs (config, layers) and child manifests (an index). */
export function manifestReferences(doc: ParsedManifest): { blobs: string[]; manifests: string[] } {
  const blobs: string[] = [];
  const manifests: string[] = [];
  if (typeof doc.config?.digest === 'string') blobs.push(doc.config.digest);
  for (const l of Array.isArray(doc.layers) ? doc.layers : []) if (typeof l?.digest === 'string') blobs.push(l.digest);
  for (const m of Array.isArray(doc.manifests) ? doc.manifests : []) if (typeof m?.digest === 'string') manifests.push(m.digest);
  return { blobs, manifests };
}
