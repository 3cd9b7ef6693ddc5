import type { RetentionPolicyConfig } from '../../config/schema.js';
import { globToRegExp } from '../../reference/match.js';
import type { RepositoryRef } from '../store/types.js';

/** A compiled retention policy. */
export interface RetentionPolicy {
  /** The policy as written, for reports. */
  describe: string;
  keepLast?: number;
  keepTags?: RegExp;
  expireAfter?: number;
  expireTags?: RegExp;
  semverOnly?: boolean;
  matches(repo: RepositoryRef): boolean;
}

export function compileRetention(policies: RetentionPolicyConfig[]): RetentionPolicy[] {
  return policies.map((p) => {
    const upstream = globToRegExp(p.upstream);
    const repository = globToRegExp(p.repository);
    const parts = [`${p.upstream}/${p.repository}`];
    if (p.keepLast !== undefined) parts.push(`keepLast ${p.keepLast}`);
    if (p.keepTags !== undefined) parts.push(`keepTags /${p.keepTags}/`);
    if (p.expireAfter !== undefined) parts.push(`expireAfter ${formatDuration(p.expireAfter)}`);
    if (p.expireTags !== undefined) parts.push(`expireTags /${p.expireTags}/`);
    if (p.semverOnly) parts.push('semverOnly');
    return {
      describe: parts.join(', '),
      ...(p.keepLast !== undefined ? { keepLast: p.keepLast } : {}),
      ...(p.keepTags !== undefined ? { keepTags: new RegExp(p.keepTags) } : {}),
      ...(p.expireAfter !== undefined ? { expireAfter: p.expireAfter } : {}),
      ...(p.expireTags !== undefined ? { expireTags: new RegExp(p.expireTags) } : {}),
      ...(p.semverOnly ? { semverOnly: true } : {}),
      matches: (repo: RepositoryRef) => upstream.test(repo.upstream) && repository.test(repo.path),
    };
  });
}

/** The first policy that covers the repository, if any. */
export function policyFor(policies: RetentionPolicy[], repo: RepositoryRef): RetentionPolicy | undefined {
  return policies.find((p) => p.matches(repo));
}

export interface RetainedItem {
  /** Tag name, or undefined for a manifest held without a tag (pulled by digest). */
  tag?: string;
  lastUsed: number;
}

export interface RetentionVerdict<T extends RetainedItem> {
  item: T;
  /** Why it goes. */
  reason: string;
}

/** A semantic version as tags write it: `1.2.3`, `v1.2.3`, `1.2.3-rc.1+build.5`. */
const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

/**
 * What a policy removes from one repository. Tags matching `keepTags` always stay (and do not count toward
 * `keepLast`); with `semverOnly`, other tags that are not semantic versions go; of the rest, the `keepLast`
 * most recent stay; anything older than `expireAfter` goes (only tags matching `expireTags`, when set).
 * Untagged manifests are only subject to `expireAfter`.
 */
export function applyRetention<T extends RetainedItem>(policy: RetentionPolicy, items: T[], now: number): { remove: RetentionVerdict<T>[]; pinned: Set<T> } {
  const pinned = new Set<T>();
  const remove: RetentionVerdict<T>[] = [];
  const candidates: T[] = [];
  for (const item of items) {
    if (item.tag !== undefined && policy.keepTags?.test(item.tag)) pinned.add(item);
    else candidates.push(item);
  }
  const tagged = candidates.filter((i) => i.tag !== undefined && !(policy.semverOnly && !SEMVER.test(i.tag))).sort((a, b) => b.lastUsed - a.lastUsed || (a.tag! < b.tag! ? -1 : 1));
  const beyond = new Set(policy.keepLast !== undefined ? tagged.slice(policy.keepLast) : []);
  for (const item of candidates) {
    if (policy.semverOnly && item.tag !== undefined && !SEMVER.test(item.tag)) remove.push({ item, reason: 'retention: not a semantic version' });
    else if (beyond.has(item)) remove.push({ item, reason: `retention: not among the ${policy.keepLast} most recent tags` });
    else if (policy.expireAfter !== undefined && now - item.lastUsed > policy.expireAfter && (item.tag === undefined || !policy.expireTags || policy.expireTags.test(item.tag))) {
      remove.push({ item, reason: `retention: unused for more than ${formatDuration(policy.expireAfter)}` });
    }
  }
  return { remove, pinned };
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
