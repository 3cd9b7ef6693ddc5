/**
 * What a scenario hands back: tables of figures (already formatted), the targets it checked, notes, and raw
 * numbers for the JSON results file. Rendered as Markdown for the console and docs/benchmarks.md.
 */

export interface Check {
  /** What is compared, e.g. "throughput vs distribution". */
  name: string;
  /** The measured value, formatted (e.g. "1.35x"). */
  value: string;
  /** The target, formatted (e.g. ">= 1.2x"). */
  target: string;
  met: boolean;
}

export interface Table {
  title?: string;
  columns: string[];
  rows: string[][];
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** Set when the scenario could not run (a missing feature or tool); nothing else is meaningful then. */
  skipped?: string;
  tables: Table[];
  checks: Check[];
  notes: string[];
  /** Raw figures (bytes/s, requests/s, ms, bytes) for the JSON results file and the smoke test. */
  metrics: Record<string, number>;
}

export function emptyResult(id: string, title: string): ScenarioResult {
  return { id, title, tables: [], checks: [], notes: [], metrics: {} };
}

export function markdownTable(t: Table): string {
  if (t.columns.length === 0) return t.title ?? ''; // pre-rendered text (a scenario run by another script)
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`| ${t.columns.map(esc).join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`];
  for (const row of t.rows) lines.push(`| ${row.map(esc).join(' | ')} |`);
  return (t.title ? `${t.title}\n\n` : '') + lines.join('\n');
}

export function renderResult(r: ScenarioResult): string {
  const out: string[] = [`## ${r.id}. ${r.title}`, ''];
  if (r.skipped) {
    out.push(`Skipped: ${r.skipped}`, '');
    return out.join('\n');
  }
  for (const t of r.tables) out.push(markdownTable(t), '');
  if (r.checks.length) {
    out.push(
      markdownTable({
        columns: ['target', 'measured', 'wanted', 'met'],
        rows: r.checks.map((c) => [c.name, c.value, c.target, c.met ? 'yes' : '**no**']),
      }),
      '',
    );
  }
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length) out.push('');
  return out.join('\n');
}
