import { DOCKER_HUB_ALIASES } from '../../config/schema.js';

export const DOCKER_HUB = 'docker.io';

/** Canonical upstream key for a registry host as written by a client (Docker Hub has three names). */
export function canonicalHost(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.includes(h) ? DOCKER_HUB : h;
}
