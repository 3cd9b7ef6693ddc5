import { PATH_COMPONENT_RE, parseDigest } from './grammar.js';
import { DOCKER_HUB_DOMAIN, formatReference, familiarName, fullName, parseReference, type ImageReference } from './parse.js';
import type { ImageMatcher } from './match.js';

/**
 * The image rewrite the webhook applies, with the routing the mirror uses: Docker Hub images become
 * `<mirror>/<path>` (`library/` kept), other registries `<mirror>/<registry-host>/<path>`. A Docker Hub
 * path whose first component the mirror would take for a host (`docker.io/ghcr.io/evil/app`) is written
 * `<mirror>/docker.io/<path>`, so it cannot be served from that other registry.
 */

export interface RewriteRules {
  /** Registry host (and port) of the mirror, lowercase. */
  mirrorHost: string;
  /** Lowercase registry hosts whose images go through the mirror; `docker.io` stands for Docker Hub. */
  registries: ReadonlySet<string>;
  /** Hosts that are Docker Hub under another name (lowercase). */
  dockerHubAliases: readonly string[];
  /** Images matching these are left alone. */
  exclude: ImageMatcher;
  /**
   * Names the mirror hosts itself (`mirror.hosted.repositories`): a Docker Hub path they match is written with
   * the explicit `docker.io/` prefix, so the pod gets Docker Hub's image, never the hosted one of that name.
   */
  hostedPaths: ImageMatcher;
}

/** Bounded set: these values label metrics. */
export const REWRITE_REASONS = [
  'rewritten',
  'already-mirrored',
  'not-upstream',
  'excluded',
  'invalid',
  'unroutable-host',
  'unsupported-digest',
  'name-too-long',
] as const;
export type RewriteReason = (typeof REWRITE_REASONS)[number];

export interface RewriteResult {
  input: string;
  output: string;
  changed: boolean;
  reason: RewriteReason;
  /** Human explanation when the image was left alone. */
  detail?: string;
}

function unchanged(input: string, reason: RewriteReason, detail: string): RewriteResult {
  return { input, output: input, changed: false, reason, detail };
}

/**
 * Whether the mirror's router (`Upstreams.resolve`) reads a first path component as a registry host: it has
 * a dot or is `localhost`. The round-trip property test routes rewritten names through that router.
 */
function routedAsHost(component: string): boolean {
  return component.includes('.') || component === 'localhost';
}

/** The mirror-side repository path for a parsed reference, or a reason the mirror could not route it back. */
export function mirrorPath(ref: ImageReference, hub: boolean, hostedPaths: ImageMatcher): { path: string } | { unroutable: string } {
  if (hub) {
    // A single name is never read as a host (it is a `library/` name on Docker Hub).
    const slash = ref.path.indexOf('/');
    const explicit = (slash > 0 && routedAsHost(ref.path.slice(0, slash))) || hostedPaths([ref.path]);
    return { path: explicit ? `${DOCKER_HUB_DOMAIN}/${ref.path}` : ref.path };
  }
  const host = ref.domain.toLowerCase();
  // The host becomes the first path component on the mirror, so it must obey the path grammar (no port, no IPv6)...
  if (!PATH_COMPONENT_RE.test(host)) return { unroutable: `registry host ${host} cannot be a path component on the mirror` };
  // ...and read as a host there, or the mirror would serve a Docker Hub repository of that name instead.
  if (!routedAsHost(host)) return { unroutable: `registry host ${host} has no dot: the mirror would read it as a Docker Hub namespace` };
  return { path: `${host}/${ref.path}` };
}

/** What the webhook writes for one image. Pure; never throws. */
export function rewriteImage(input: string, rules: RewriteRules): RewriteResult {
  const parsed = parseReference(input);
  if (!parsed.ok) return unchanged(input, 'invalid', parsed.error);
  const ref = parsed.ref;
  const host = ref.domain.toLowerCase();
  if (host === rules.mirrorHost) return unchanged(input, 'already-mirrored', 'image is already on the mirror');

  const candidates = [input, familiarName(ref), fullName(ref), formatReference(ref)];
  if (rules.exclude(candidates)) return unchanged(input, 'excluded', 'image matches an exclude pattern');

  const hub = host === DOCKER_HUB_DOMAIN || rules.dockerHubAliases.includes(host);
  if (!rules.registries.has(hub ? DOCKER_HUB_DOMAIN : host)) {
    return unchanged(input, 'not-upstream', `registry ${host} is not mirrored`);
  }
  if (ref.digest !== undefined && !parseDigest(ref.digest)) {
    return unchanged(input, 'unsupported-digest', 'the mirror cannot verify this digest algorithm');
  }
  const routed = mirrorPath(ref, hub, rules.hostedPaths);
  if ('unroutable' in routed) return unchanged(input, 'unroutable-host', routed.unroutable);
  const path = routed.path;

  const tag = ref.tag ?? (ref.digest === undefined ? 'latest' : undefined);
  const output = formatReference({ domain: rules.mirrorHost, path, tag, digest: ref.digest });
  // Whatever we write must itself be a valid reference (the 255-character limit can bite after prefixing).
  const check = parseReference(output);
  if (!check.ok) return unchanged(input, 'name-too-long', `rewritten reference would be invalid: ${check.error}`);
  return { input, output, changed: true, reason: 'rewritten' };
}
