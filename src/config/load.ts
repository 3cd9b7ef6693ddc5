import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, KNOWN_UPSTREAM_OPTIONS, KNOWN_UPSTREAM_URLS, type Config } from './schema.js';
import { MirrorgateError } from '../common/errors.js';

/** A raw, not yet validated configuration tree (what YAML, env and flags produce). */
export type RawConfig = Record<string, unknown>;

export class ConfigError extends MirrorgateError {
  readonly problems: string[];
  constructor(problems: string[], source: string) {
    super('CONFIG_INVALID', `invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      detail: problems,
    });
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** YAML file path; omitted means embedded defaults only. */
  file?: string | undefined;
  /** Environment to read MIRRORGATE_* overrides from. */
  env?: NodeJS.ProcessEnv;
  /** Overrides from command-line flags, applied last. */
  overrides?: RawConfig;
}

/**
 * Environment variables and the config path they override. Kept as a table so `--help` and the docs can list it.
 */
export const ENV_OVERRIDES: Record<string, { path: string[]; describe: string }> = {
  MIRRORGATE_LISTEN: { path: ['mirror', 'listen'], describe: 'mirror listen address' },
  MIRRORGATE_STORAGE: { path: ['mirror', 'storage', 'path'], describe: 'mirror cache directory' },
  MIRRORGATE_UPSTREAMS: { path: ['upstreams'], describe: 'comma-separated HOST=URL list, replaces the upstreams' },
  MIRRORGATE_MIRROR_HOST: { path: ['webhook', 'mirrorHost'], describe: 'registry host the webhook rewrites to' },
  MIRRORGATE_WEBHOOK_LISTEN: { path: ['webhook', 'listen'], describe: 'webhook listen address' },
  MIRRORGATE_LOG_LEVEL: { path: ['log', 'level'], describe: 'log level' },
  MIRRORGATE_WORKERS: { path: ['mirror', 'workers'], describe: 'mirror worker processes: a number or auto' },
};

/** Parses `HOST=URL` (or a bare well-known HOST) into an upstreams map. Problems are collected, not thrown. */
export function parseUpstreamSpecs(specs: string[], problems: string[]): RawConfig {
  const out: RawConfig = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const host = (eq < 0 ? spec : spec.slice(0, eq)).trim().toLowerCase();
    const url = eq < 0 ? KNOWN_UPSTREAM_URLS[host] : spec.slice(eq + 1).trim();
    if (!host || !url) {
      problems.push(`upstream "${spec}": expected HOST=URL (a URL may be left out only for ${Object.keys(KNOWN_UPSTREAM_URLS).join(', ')})`);
      continue;
    }
    out[host] = eq < 0 ? { url, ...KNOWN_UPSTREAM_OPTIONS[host] } : { url };
  }
  return out;
}

function setPath(tree: RawConfig, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as RawConfig;
  }
  node[path[path.length - 1]!] = value;
}

function isPlainObject(v: unknown): v is RawConfig {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where `over` wins; `upstreams` from an override replaces rather than merges (explicit list). */
export function mergeConfig(base: RawConfig, over: RawConfig, replaceKeys = new Set(['upstreams'])): RawConfig {
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(out[k]) && !replaceKeys.has(k) ? mergeConfig(out[k] as RawConfig, v, new Set()) : v;
  }
  return out;
}

export function readConfigFile(file: string, problems: string[]): RawConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as Error).message}`);
    return {};
  }
  try {
    const doc = parseYaml(text) as unknown;
    if (doc === null || doc === undefined) return {};
    if (!isPlainObject(doc)) {
      problems.push(`${file}: the top level must be a mapping`);
      return {};
    }
    return doc;
  } catch (err) {
    problems.push(`${file}: not valid YAML: ${(err as Error).message}`);
    return {};
  }
}

export function envOverrides(env: NodeJS.ProcessEnv, problems: string[]): RawConfig {
  const tree: RawConfig = {};
  for (const [name, { path }] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (name === 'MIRRORGATE_UPSTREAMS') {
      setPath(tree, path, parseUpstreamSpecs(value.split(',').filter(Boolean), problems));
    } else if (name === 'MIRRORGATE_WORKERS') {
      setPath(tree, path, /^[0-9]+$/.test(value) ? Number(value) : value);
    } else {
      setPath(tree, path, value);
    }
  }
  return tree;
}

/** Validates a raw tree; every problem is reported at once. */
export function validateConfig(raw: RawConfig, source: string, earlier: string[] = []): Config {
  const result = configSchema.safeParse(raw);
  const problems = [...earlier];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const where = issue.path.length ? issue.path.join('.') : '(top level)';
      problems.push(`${where}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems, source);
  return deepFreeze(result.data);
}

/** File, then environment, then flags; validated once, frozen. */
export function loadConfig(options: LoadOptions = {}): Config {
  const problems: string[] = [];
  const fromFile = options.file ? readConfigFile(options.file, problems) : {};
  const fromEnv = envOverrides(options.env ?? {}, problems);
  const merged = mergeConfig(mergeConfig(fromFile, fromEnv), options.overrides ?? {});
  return validateConfig(merged, options.file ?? 'embedded defaults', problems);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
