import { DOCKER_HUB_ALIASES, type Config } from '../config/schema.js';
import { DOCKER_HUB_DOMAIN } from '../reference/parse.js';
import { compileMatcher } from '../reference/match.js';
import type { RewriteRules } from '../reference/rewrite.js';

/**
 * Registries rewritten when `webhook.registries` is not set: exactly the mirror's upstreams, so the webhook
 * never sends a node to the mirror for an image the mirror cannot serve.
 */
export function defaultRegistries(config: Pick<Config, 'upstreams'>): string[] {
  return Object.keys(config.upstreams);
}

/** Builds the pure rewrite rules from a validated configuration. */
export function rulesFromConfig(config: Pick<Config, 'upstreams' | 'webhook'> & { mirror: Pick<Config['mirror'], 'hosted'> }): RewriteRules {
  const aliases = DOCKER_HUB_ALIASES.map((h) => h.toLowerCase());
  const registries = new Set(
    (config.webhook.registries ?? defaultRegistries(config))
      .map((h) => h.toLowerCase())
      .map((h) => (aliases.includes(h) ? DOCKER_HUB_DOMAIN : h)),
  );
  return {
    mirrorHost: config.webhook.mirrorHost.toLowerCase(),
    registries,
    dockerHubAliases: aliases,
    exclude: compileMatcher(config.webhook.exclude),
    hostedPaths: compileMatcher(config.mirror.hosted.repositories),
  };
}
