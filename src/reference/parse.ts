import { DIGEST, DOMAIN_RE, NAME_MAX_LENGTH, REPOSITORY_PATH_RE, TAG } from './grammar.js';

/**
 * Image references parsed and normalised the way Docker and containerd do it (distribution's
 * `ParseNormalizedNamed`): `nginx` is `docker.io/library/nginx`.
 */

export const DOCKER_HUB_DOMAIN = 'docker.io';
/** Docker's own normalisation maps only this legacy name onto docker.io. */
const LEGACY_HUB_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';

export interface ImageReference {
  /** Registry host (and port), `docker.io` for Docker Hub. Kept as written apart from the Hub alias. */
  domain: string;
  /** Repository path inside the registry; official Hub images carry `library/`. */
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

export type ParseResult = { ok: true; ref: ImageReference } | { ok: false; error: string };

/** Lengths of the lowercase hex encodings of the algorithms go-digest registers. */
const DIGEST_HEX_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

const TAG_AND_DIGEST_RE = new RegExp(`^(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const SIXTY_FOUR_HEX_RE = /^[a-f0-9]{64}$/;

/** Splits `name[:tag][@digest]` at the end of the name (a `:` after the last `/` starts the tag). */
function splitSuffix(text: string): { name: string; suffix: string } {
  const at = text.indexOf('@');
  const beforeDigest = at < 0 ? text : text.slice(0, at);
  const colon = beforeDigest.lastIndexOf(':');
  const slash = beforeDigest.lastIndexOf('/');
  const end = colon > slash ? colon : beforeDigest.length;
  return { name: text.slice(0, end), suffix: text.slice(end) };
}

function checkDigest(digest: string): string | undefined {
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const length = DIGEST_HEX_LENGTHS[algorithm];
  if (length === undefined) return `unsupported digest algorithm "${algorithm}"`;
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return `invalid ${algorithm} digest (expected ${length} lowercase hex characters)`;
  return undefined;
}

/** Parses a reference as a user writes it in a Pod spec. Never throws. */
export function parseReference(text: string): ParseResult {
  if (text.length === 0) return { ok: false, error: 'empty reference' };
  if (SIXTY_FOUR_HEX_RE.test(text)) return { ok: false, error: 'a repository name cannot be a 64-character hexadecimal string' };
  const { name, suffix } = splitSuffix(text);
  const m = TAG_AND_DIGEST_RE.exec(suffix);
  if (!m) return { ok: false, error: 'invalid tag or digest' };
  const tag = m[1];
  const digest = m[2];

  // distribution's splitDockerDomain: the first component is a registry host when it has a dot or a colon,
  // is "localhost", or has uppercase letters (which a repository path never has).
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let domain: string;
  let path: string;
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DOCKER_HUB_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === LEGACY_HUB_DOMAIN) domain = DOCKER_HUB_DOMAIN;
  if (domain === DOCKER_HUB_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;

  if (!DOMAIN_RE.test(domain)) return { ok: false, error: `invalid registry host "${domain}"` };
  if (path.toLowerCase() !== path) return { ok: false, error: `repository name "${path}" must be lowercase` };
  if (!REPOSITORY_PATH_RE.test(path)) return { ok: false, error: `invalid repository name "${path}"` };
  if (domain.length + 1 + path.length > NAME_MAX_LENGTH) {
    return { ok: false, error: `repository name longer than ${NAME_MAX_LENGTH} characters` };
  }
  if (digest !== undefined) {
    const problem = checkDigest(digest);
    if (problem) return { ok: false, error: problem };
  }
  return { ok: true, ref: { domain, path, tag, digest } };
}

/** `domain/path` (the fully qualified repository name). */
export function fullName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The canonical string: `domain/path[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return fullName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** The short form Docker prints: `nginx`, `bitnami/nginx`, `ghcr.io/a/b`. */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== DOCKER_HUB_DOMAIN) return fullName(ref);
  return ref.path.startsWith(OFFICIAL_REPO_PREFIX) && ref.path.indexOf('/', OFFICIAL_REPO_PREFIX.length) < 0
    ? ref.path.slice(OFFICIAL_REPO_PREFIX.length)
    : ref.path;
}

export function isValidReference(text: string): boolean {
  return parseReference(text).ok;
}
