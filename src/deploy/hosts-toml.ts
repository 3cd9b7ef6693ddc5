import { DOCKER_HUB_ALIASES, REGISTRY_HOST_RE, type Config } from '../config/schema.js';

/**
 * containerd registry host configuration (`/etc/containerd/certs.d/<registry>/hosts.toml`) that sends each
 * upstream's pulls to the mirror first, and to the upstream itself (`server`) when the mirror fails. containerd
 * adds `?ns=<registry>` to requests it sends to a mirror host; the mirror routes on it (docs/mirror.md).
 */
export const CONTAINERD_CERTS_DIR = '/etc/containerd/certs.d';

export interface HostsTomlOptions {
  /** Mirror host (`registry.example.com[:port]`) or base URL (`https://...`, `http://...`). */
  mirror: string;
  /** Path of the mirror's CA certificate as the node sees it; written as `ca = "..."`. */
  ca?: string | undefined;
}

export interface HostsTomlFile {
  /** containerd's directory name for the registry: `docker.io` for Docker Hub. */
  registry: string;
  /** Path relative to the certs.d directory: `<registry>/hosts.toml`. */
  relativePath: string;
  text: string;
}

/** A TOML basic string. JSON's escapes (\" \\ \n \uXXXX) are all valid TOML. */
function tomlString(s: string): string {
  return JSON.stringify(s);
}

function parseMirror(mirror: string): { scheme: string; host: string } {
  const m = /^(https?):\/\/([^/]+)\/*$/.exec(mirror);
  const host = m ? m[2]! : mirror;
  if (!REGISTRY_HOST_RE.test(host)) throw new Error(`--mirror ${JSON.stringify(mirror)} is not a registry host or an http(s) URL without a path`);
  return { scheme: m ? m[1]! : 'https', host };
}

/** The mirror's base URL: https unless the scheme is given. */
export function mirrorUrl(mirror: string): string {
  const { scheme, host } = parseMirror(mirror);
  return `${scheme}://${host}`;
}

/** The mirror's host (and port), as containerd names its directory. */
export function mirrorHostOf(mirror: string): string {
  return parseMirror(mirror).host;
}

/** containerd's directory for a registry host: Docker Hub's aliases are all `docker.io`. */
export function containerdRegistryDir(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.includes(h) ? 'docker.io' : h;
}

export function renderHostsToml(server: string, opts: HostsTomlOptions): string {
  const lines = [`server = ${tomlString(server)}`, '', `[host.${tomlString(mirrorUrl(opts.mirror))}]`, '  capabilities = ["pull", "resolve"]'];
  if (opts.ca) lines.push(`  ca = ${tomlString(opts.ca)}`);
  return `${lines.join('\n')}\n`;
}

/** One file per configured upstream, in the configuration's order (Docker Hub's aliases merged into one). */
export function hostsTomlFiles(config: Pick<Config, 'upstreams'>, opts: HostsTomlOptions): HostsTomlFile[] {
  const seen = new Set<string>();
  const files: HostsTomlFile[] = [];
  for (const [host, upstream] of Object.entries(config.upstreams)) {
    const registry = containerdRegistryDir(host);
    if (seen.has(registry)) continue;
    seen.add(registry);
    files.push({ registry, relativePath: `${registry}/hosts.toml`, text: renderHostsToml(upstream.url, opts) });
  }
  return files;
}

/** All files on stdout, each under a `# <certs.d>/<registry>/hosts.toml` header line. */
export function printHostsToml(files: HostsTomlFile[], certsDir = CONTAINERD_CERTS_DIR): string {
  return files.map((f) => `# ${certsDir}/${f.relativePath}\n${f.text}`).join('\n');
}
