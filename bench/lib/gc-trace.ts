/**
 * Reads what `node --trace-gc` wrote while a step ran: the pauses of the young generation's collector
 * (Scavenge) and of the full one (Mark-Compact), in milliseconds, so a server's tail can be set beside its GC.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export interface GcPauses {
  scavenges: number[];
  markCompacts: number[];
}

/** `[pid:isolate]  1234 ms: Scavenge 20.1 (40.0) -> 5.3 (41.0) MB, 1.85 / 0.00 ms ...`: the pause is the first figure after the sizes. */
const LINE_RE = /: (Scavenge|Mark-Compact)\b[^,]*MB, ([0-9.]+) \//;

export function parseGcTrace(text: string): GcPauses {
  const pauses: GcPauses = { scavenges: [], markCompacts: [] };
  for (const line of text.split('\n')) {
    const m = LINE_RE.exec(line);
    if (m) (m[1] === 'Scavenge' ? pauses.scavenges : pauses.markCompacts).push(Number(m[2]));
  }
  return pauses;
}

/** The file's size now, to read what is appended after it with `readFrom`. */
export function fileSize(file: string): number {
  return statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

export function readFrom(file: string, offset: number): string {
  const end = fileSize(file);
  if (end <= offset) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(end - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** `scavenges 12 (p50 0.8, max 2.1 ms), mark-compacts 1 (max 6.9 ms)` */
export function describeGc(p: GcPauses): string {
  const sorted = [...p.scavenges].sort((a, b) => a - b);
  const p50 = sorted.length ? sorted[Math.floor(sorted.length / 2)]! : NaN;
  const max = (xs: number[]) => (xs.length ? Math.max(...xs).toFixed(1) : '-');
  return `scavenges ${sorted.length} (p50 ${Number.isFinite(p50) ? p50.toFixed(1) : '-'}, max ${max(sorted)} ms), mark-compacts ${p.markCompacts.length} (max ${max(p.markCompacts)} ms)`;
}
