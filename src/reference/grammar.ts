/**
 * The image reference grammar of distribution's `reference` package and the OCI Distribution spec, as
 * regular expressions. Both halves of the product validate names, tags and digests with these.
 */

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
export const PATH_COMPONENT = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
export const DOMAIN = `(?:${domainName}|${ipv6})(?::[0-9]+)?`;
export const TAG = '[\\w][\\w.-]{0,127}';
export const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
/** A repository path: slash-separated path components, no domain. */
export const REPOSITORY_PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;

export const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
export const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
export const TAG_RE = new RegExp(`^${TAG}$`);
export const DIGEST_RE = new RegExp(`^${DIGEST}$`);
export const REPOSITORY_PATH_RE = new RegExp(`^${REPOSITORY_PATH}$`);

/** distribution's NameTotalLengthMax. */
export const NAME_MAX_LENGTH = 255;

/** Digest algorithms we can verify, with the exact length of their lowercase hex encoding. */
export const DIGEST_ALGORITHMS: Record<string, { hexLength: number; nodeName: string }> = {
  sha256: { hexLength: 64, nodeName: 'sha256' },
  sha512: { hexLength: 128, nodeName: 'sha512' },
};

export function isValidRepositoryPath(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX_LENGTH && REPOSITORY_PATH_RE.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export interface ParsedDigest {
  algorithm: string;
  hex: string;
  /** `algorithm:hex`, as written. */
  digest: string;
}

/**
 * Parses a digest we can verify: a registered algorithm and a lowercase hex string of its exact length.
 * Anything else (unknown algorithm, wrong length, uppercase) is undefined: the caller answers DIGEST_INVALID.
 */
export function parseDigest(text: string): ParsedDigest | undefined {
  if (text.length > 256 || !DIGEST_RE.test(text)) return undefined;
  const i = text.indexOf(':');
  const algorithm = text.slice(0, i);
  const hex = text.slice(i + 1);
  const spec = DIGEST_ALGORITHMS[algorithm];
  if (!spec || hex.length !== spec.hexLength || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return { algorithm, hex, digest: text };
}

/** True when the text has the shape of a digest (algorithm:hex), whatever the algorithm. */
export function looksLikeDigest(text: string): boolean {
  return text.includes(':');
}
