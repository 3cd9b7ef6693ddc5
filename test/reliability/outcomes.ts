import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';

export type Outcome = 'verified' | 'spec-error' | 'aborted-short' | 'corrupted' | 'crashed';
export const OUTCOMES: Outcome[] = ['verified', 'spec-error', 'aborted-short', 'corrupted', 'crashed'];

/**
 * What a client ended up with, classified: the complete verified bytes; a spec error envelope; a transfer
 * cut short (the client knows it is incomplete); wrong bytes presented as complete (must never happen); or
 * no answer from the mirror at all (must never happen).
 */
export async function fetchAndClassify(url: string, digest: string, expectedSize: number, headers: Record<string, string> = {}, dispatcher?: Dispatcher): Promise<Outcome> {
  let res;
  try {
    res = await request(url, { headers, headersTimeout: 30_000, bodyTimeout: 30_000, ...(dispatcher ? { dispatcher } : {}) });
  } catch {
    return 'crashed';
  }
  const hash = createHash('sha256');
  let size = 0;
  const chunks: Buffer[] = [];
  let broken = false;
  try {
    for await (const c of res.body) {
      const b = c as Buffer;
      hash.update(b);
      size += b.length;
      if (res.statusCode !== 200) chunks.push(b);
    }
  } catch {
    broken = true;
  }
  if (res.statusCode === 200) {
    if (`sha256:${hash.digest('hex')}` === digest && size === expectedSize && !broken) return 'verified';
    if (broken || size < expectedSize) return 'aborted-short';
    return 'corrupted';
  }
  try {
    const doc = JSON.parse(Buffer.concat(chunks).toString()) as { errors?: { code?: unknown }[] };
    if (Array.isArray(doc.errors) && typeof doc.errors[0]?.code === 'string') return 'spec-error';
  } catch {
    /* not an envelope */
  }
  return 'corrupted';
}

export class Tally {
  readonly rows = new Map<string, Record<Outcome, number>>();

  add(fault: string, outcome: Outcome): void {
    let row = this.rows.get(fault);
    if (!row) {
      row = { verified: 0, 'spec-error': 0, 'aborted-short': 0, corrupted: 0, crashed: 0 };
      this.rows.set(fault, row);
    }
    row[outcome]++;
  }

  total(outcome: Outcome): number {
    let n = 0;
    for (const row of this.rows.values()) n += row[outcome];
    return n;
  }

  /** A Markdown table: fault, trials, and each outcome's count. */
  table(): string {
    const lines = ['| fault | trials | served verified | spec error | cut short | corrupted | crashed |', '|---|---|---|---|---|---|---|'];
    for (const [fault, r] of this.rows) {
      const trials = OUTCOMES.reduce((a, o) => a + r[o], 0);
      lines.push(`| ${fault} | ${trials} | ${r.verified} | ${r['spec-error']} | ${r['aborted-short']} | ${r.corrupted} | ${r.crashed} |`);
    }
    return lines.join('\n');
  }
}
