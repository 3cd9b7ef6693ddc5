/** Manifest media types and what can be read out of a manifest's JSON. */

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
