import { DOCKER_HUB_ALIASES, KNOWN_UPSTREAM_URLS, type Config } from '../config/schema.js';
import { DOCKER_HUB_DOMAIN } from '../reference/parse.js';
import { compileMatcher } from '../reference/match.js';
import type { RewriteRules } from '../reference/rewrite.js';

/** Registries rewritten when `webhook.registries` is not set: the configured upstreams plus the well-known ones. */
export function defaultRegistries(config: Pick<Config, 'upstreams'>): string[] {
  return [...new Set([...Object.keys(config.upstreams), ...Object.keys(KNOWN_UPSTREAM_URLS)])];
}

/** Builds the pure rewrite rules from a validated configuration. */
export function rulesFromConfig(config: Pick<Config, 'upstreams' | 'webhook'>): RewriteRules {
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
  };
}
