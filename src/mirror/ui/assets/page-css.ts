/** The status page's style sheet. */
export const PAGE_CSS = String.raw`:root {
  --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #ffffff;
  --cache: #2e9e6b; --upstream: #e07b39; --bad: #c4372f; --warn: #b7791f;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); background: var(--bg);
}
body { margin: 0; }
header { display: flex; align-items: baseline; justify-content: space-between; padding: 14px 28px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 0 0 4px; }
main { padding: 18px 28px 40px; max-width: 1200px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
section.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; background: none; border: none; padding: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin: 4px 0 2px; }
.card .sub { font-size: 13px; color: var(--muted); }
.bar { height: 6px; background: var(--line); border-radius: 3px; margin-top: 8px; overflow: hidden; }
.bar > div { height: 100%; background: var(--cache); }
.muted { color: var(--muted); font-size: 13px; margin: 0 0 8px; }
.error { background: #fdecea; color: var(--bad); border: 1px solid #f5c2bd; border-radius: 8px; padding: 10px 14px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 7px 8px; vertical-align: top; }
tr:last-child td { border-bottom: none; }
td.empty { color: var(--muted); text-align: center; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.tag { display: inline-block; border: 1px solid var(--line); border-radius: 4px; padding: 1px 6px; margin: 0 4px 4px 0; font-size: 12.5px; background: var(--bg); }
.tag .muted { font-size: 11.5px; margin: 0 0 0 4px; }
.state { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 600; }
.state.warm, .state.ok { background: #e3f5ec; color: var(--cache); }
.state.failed, .state.bad { background: #fdecea; color: var(--bad); }
.state.pending, .state.warming { background: #fdf3e1; color: var(--warn); }
.chart svg { width: 100%; height: auto; display: block; }
.chart .axis { stroke: var(--line); stroke-width: 1; }
.chart .tick { fill: var(--muted); font-size: 11px; }
.chart .cache { fill: var(--cache); }
.chart .upstream { fill: var(--upstream); }
.legend { display: flex; gap: 18px; font-size: 13px; margin-top: 6px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.legend i.cache { background: var(--cache); }
.legend i.upstream { background: var(--upstream); }
`;
