import type { Descriptor } from '../store/manifest-media.js';

/** `os/architecture[/variant]`, as configured and as reported. */
export function formatPlatform(p: NonNullable<Descriptor['platform']>): string {
  return [p.os ?? 'unknown', p.architecture ?? 'unknown', ...(p.variant ? [p.variant] : [])].join('/');
}

/**
 * The entries of an index to fetch for the wanted platforms: for each, the first entry of that OS and
 * architecture (and variant, when the wanted platform names one: `linux/arm64` takes `linux/arm64/v8`).
 * Attestations (`unknown/unknown`) never match.
 */
export function selectPlatforms(entries: readonly Descriptor[], wanted: readonly string[]): Descriptor[] {
  const out: Descriptor[] = [];
  for (const w of wanted) {
    const [os, architecture, variant] = w.split('/');
    const match = entries.find((e) => e.platform?.os === os && e.platform?.architecture === architecture && (variant === undefined || e.platform?.variant === variant));
    if (match && !out.includes(match)) out.push(match);
  }
  return out;
}
