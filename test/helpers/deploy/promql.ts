/**
 * The metric names a PromQL expression reads, for checking that alerts and dashboards name only metrics the code
 * exports. Not a full parser: it removes what cannot be a metric name (string literals, range and subquery brackets,
 * label matchers, the label lists of by/without/on/ignoring/group_left/group_right, Grafana's `$variables`, numbers
 * and durations), then takes each remaining identifier that is neither a keyword nor followed by `(` (functions and
 * aggregations).
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan', 'group_left', 'group_right']);
const LABEL_LISTS = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi;

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals (label values, label_replace arguments)
    .replace(/\{[^}]*\}/g, ' ') // label matchers: `name{...}` keeps its name
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(LABEL_LISTS, ' '); // `sum by (le) (x)` reads as `sum (x)`: the aggregation stays a function
  const names = new Set<string>();
  // An identifier not preceded by a word character, `.` or `$` (durations like 5m, exponents like 1e3, variables).
  for (const m of stripped.matchAll(/(?<![\w.$])[A-Za-z_:][\w:]*/g)) {
    const rest = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}
