import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { configSchema } from '../../../src/config/schema.js';
import { generateBundle, LOCAL_IPS } from '../../../src/webhook/certs.js';
import { ConfigStore } from '../../../src/webhook/config-store.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook } from '../../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../../src/webhook/tls-source.js';
import { checkMonitoring, loadRenderedConfig, type Rendering, type Tree } from '../../helpers/deploy/checks.js';
import { essentials } from '../../helpers/deploy/essentials.js';
import { CHART, helmTemplate } from '../../helpers/deploy/helm.js';
import { validateObjects } from '../../helpers/deploy/k8s-schema.js';
import { find, MANIFESTS, render } from '../../helpers/deploy/kustomize.js';
import { metricNames } from '../../helpers/deploy/promql.js';
import { startMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir, type TempDir } from '../../helpers/tmp.js';

/**
 * The alerting rules and the Grafana dashboard (manifests/components/monitoring, the chart's monitoring values):
 * rendered the same by kustomize and the chart, every metric they name exported by a running mirror and a running
 * webhook (read from their /metrics, so a renamed metric fails here), every alert shown by `promtool test rules` to
 * fire on synthetic series and to stay quiet on others.
 */

const cleanup = new Cleanup();
/** Series Prometheus adds for every target, not exported by the code. */
const PROMETHEUS_SERIES = new Set(['up']);
const MONITORING = { monitoring: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } } };

let exported: Set<string>;
let work: TempDir;
const renderings: Record<string, Rendering> = {};
let rules: { groups: Array<{ name: string; rules: Rule[] }> };

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The series names a /metrics page exposes: each `# TYPE`, with the suffixes of histograms and summaries. */
function seriesNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap(([, name, type]) =>
    type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name!, `${name}_sum`, `${name}_count`] : [name!],
  );
}

async function exportedByMirror(): Promise<string[]> {
  const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': 'http://127.0.0.1:9' } }));
  const res = await request(`${mirror.url}/metrics`);
  expect(res.statusCode).toBe(200);
  return seriesNames(await res.body.text());
}

async function exportedByWebhook(): Promise<string[]> {
  const bundle = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  // As `mirrorgate webhook` builds them (src/webhook/command.ts).
  const metrics = new WebhookMetrics({ defaultMetrics: true });
  const config = configSchema.parse({ webhook: { mirrorProbe: { enabled: false } } });
  const wh = await startWebhook({
    configStore: new ConfigStore({}, { logger: silentLogger(), metrics }, config),
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics,
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: bundle.cert, key: bundle.key }),
    health: { reachable: () => true },
  });
  cleanup.add(() => wh.close());
  const client = new Agent({ connect: { ca: bundle.caCert, servername: 'localhost' } });
  cleanup.add(() => client.close());
  const res = await request(`https://127.0.0.1:${wh.port}/metrics`, { dispatcher: client });
  expect(res.statusCode).toBe(200);
  return seriesNames(await res.body.text());
}

/** An overlay of a copy of manifests/ with these components (kustomize components are listed in order). */
function renderOverlay(name: string, components: string[]): ReturnType<typeof render> {
  const dir = path.join(work.path, 'manifests/overlays', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', namespace: 'mirrorgate', resources: ['../../base'], components: components.map((c) => `../../components/${c}`) }),
  );
  return render(`overlays/${name}`, path.join(work.path, 'manifests'));
}

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool: ${r.error.message} (scripts/setup.sh installs Debian's prometheus package, which has it)`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  exported = new Set([...(await exportedByMirror()), ...(await exportedByWebhook())]);
  work = cleanup.add(await makeTempDir('mirrorgate-monitoring-'));
  cpSync(MANIFESTS, path.join(work.path, 'manifests'), { recursive: true });
  const sets: Record<string, ReturnType<typeof render>> = {
    'kustomize: base + monitoring': renderOverlay('monitoring', ['monitoring']),
    'kustomize: base + monitoring + cert-manager': renderOverlay('monitoring-cert-manager', ['monitoring', 'cert-manager']),
    'chart: monitoring': helmTemplate({ ...MONITORING, namespace: { create: true } }),
    'chart: monitoring + cert-manager': helmTemplate({ ...MONITORING, certManager: { enabled: true }, namespace: { create: true } }),
  };
  for (const [name, objects] of Object.entries(sets)) renderings[name] = { objects, config: await loadRenderedConfig(objects), namespace: 'mirrorgate' };
  rules = find(renderings['kustomize: base + monitoring']!.objects, 'PrometheusRule').spec as typeof rules;
}, 120_000);

afterAll(() => cleanup.run());

const allRules = (): Rule[] => rules.groups.flatMap((g) => g.rules);
const dashboard = (): Tree => JSON.parse(readFileSync(path.join(MANIFESTS, 'components/monitoring/dashboard.json'), 'utf8')) as Tree;
const dashboardExprs = (): string[] => (dashboard().panels as Tree[]).flatMap((p) => ((p.targets as Tree[] | undefined) ?? []).map((t) => t.expr as string));

describe('the monitoring component and chart option', () => {
  it.each(['kustomize: base + monitoring', 'kustomize: base + monitoring + cert-manager', 'chart: monitoring', 'chart: monitoring + cert-manager'])(
    '%s: objects validate, the ServiceMonitors scrape each half with the job labels the alerts use',
    async (name) => {
      expect(await validateObjects(renderings[name]!.objects)).toEqual([]);
      checkMonitoring(renderings[name]!);
    },
  );

  it.each([
    ['kustomize: base + monitoring', 'chart: monitoring'],
    ['kustomize: base + monitoring + cert-manager', 'chart: monitoring + cert-manager'],
  ])('%s and %s render the same objects', (k, c) => {
    const a = essentials(renderings[k]!.objects, renderings[k]!.config);
    const b = essentials(renderings[c]!.objects, renderings[c]!.config);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [key, value] of a) expect(b.get(key), key).toEqual(value);
  });

  it("keeps one dashboard: the chart's file is the component's", () => {
    expect(readFileSync(path.join(CHART, 'files/dashboard.json'), 'utf8')).toBe(readFileSync(path.join(MANIFESTS, 'components/monitoring/dashboard.json'), 'utf8'));
  });
});

describe('the metrics the rules and the dashboard name', () => {
  it('reads what a running mirror and webhook export', () => {
    for (const name of ['mirrorgate_mirror_requests_total', 'mirrorgate_cache_size_bytes', 'mirrorgate_webhook_fail_open_total', 'mirrorgate_mirror_request_duration_seconds_bucket'])
      expect(exported, name).toContain(name);
  });

  it('names only exported metrics in every alert', () => {
    for (const rule of allRules()) {
      const names = metricNames(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      const unknown = names.filter((n) => !exported.has(n) && !PROMETHEUS_SERIES.has(n));
      expect(unknown, `${rule.alert} names ${unknown.join(', ')}`).toEqual([]);
    }
  });

  it('names only exported metrics in every dashboard query', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(20);
    for (const expr of exprs) {
      const names = metricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      const unknown = names.filter((n) => !exported.has(n) && !PROMETHEUS_SERIES.has(n));
      expect(unknown, `${expr} names ${unknown.join(', ')}`).toEqual([]);
    }
  });

  it('selects only the jobs the ServiceMonitors set', () => {
    const jobs = [...allRules().map((r) => r.expr), ...dashboardExprs()].flatMap((e) => [...e.matchAll(/job=~?"([^"]+)"/g)].flatMap((m) => m[1]!.split('|')));
    expect(new Set(jobs)).toEqual(new Set(['mirrorgate-mirror', 'mirrorgate-webhook']));
  });
});

describe('the Grafana dashboard', () => {
  it('queries the data source its user picks, with unique panel ids, inside the 24-column grid', () => {
    const d = dashboard();
    expect(d.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const panels = d.panels as Tree[];
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect((p.targets as Tree[]).length, p.title).toBeGreaterThan(0);
      for (const t of p.targets as Tree[]) expect(t.datasource, p.title).toEqual(p.datasource);
    }
  });
});

// ---- promtool ----------------------------------------------------------------------------------------------------

/** The labels Prometheus gives the mirror's and the webhook's targets (the ServiceMonitors' job labels). */
const MIRROR = { job: 'mirrorgate-mirror', namespace: 'mirrorgate', pod: 'mirrorgate-mirror-7d9f', instance: '10.0.0.5:5000' };
const WEBHOOK_A = { job: 'mirrorgate-webhook', namespace: 'mirrorgate', pod: 'mirrorgate-webhook-a', instance: '10.0.0.6:8443' };
const WEBHOOK_B = { ...WEBHOOK_A, pod: 'mirrorgate-webhook-b', instance: '10.0.0.7:8443' };
const HUB = { upstream: 'docker.io' };
const JOB = (target: { job: string; namespace: string }): Record<string, string> => ({ job: target.job, namespace: target.namespace });

interface Series {
  name: string;
  labels: Record<string, string>;
  /** promtool's expanding notation, one sample a minute: `0+10x30`, `1 1 0x10`. */
  values: string;
}
const s = (name: string, labels: Record<string, string>, values: string): Series => ({ name, labels, values });

interface Scenario {
  what: string;
  series: Series[];
  /** Minutes after the first sample. */
  at: number;
  /** The alerts expected then: their labels beyond alertname and the rule's, and their summary. None: quiet. */
  alerts: Array<{ labels: Record<string, string>; summary: string }>;
}

const REQUESTS = 'mirrorgate_upstream_requests_total';
const blob = { ...MIRROR, ...HUB, method: 'GET', kind: 'blob' };
const TEN_DAYS = 10 * 86_400;

/** Each alert: at least one scenario where it fires, at least one where it stays quiet. */
const SCENARIOS: Record<string, Scenario[]> = {
  MirrorgateMirrorDown: [
    { what: 'down for 8 minutes', series: [s('up', MIRROR, '1 1 0x15')], at: 10, alerts: [{ labels: JOB(MIRROR), summary: 'The mirror has not answered a scrape for 5 minutes' }] },
    { what: 'no target at all', series: [s('up', WEBHOOK_A, '1x15')], at: 10, alerts: [{ labels: { job: 'mirrorgate-mirror' }, summary: 'The mirror has not answered a scrape for 5 minutes' }] },
    { what: 'up', series: [s('up', MIRROR, '1x15')], at: 10, alerts: [] },
    { what: 'down for 2 minutes', series: [s('up', MIRROR, '1 0 0 1x12')], at: 10, alerts: [] },
  ],
  MirrorgateMirrorUnreachable: [
    {
      what: 'no replica reaches it',
      series: [s('mirrorgate_webhook_mirror_reachable', WEBHOOK_A, '0x15'), s('mirrorgate_webhook_mirror_reachable', WEBHOOK_B, '0x15')],
      at: 10,
      alerts: [{ labels: JOB(WEBHOOK_A), summary: 'No webhook replica reaches the mirror at webhook.mirrorProbe.url' }],
    },
    { what: 'one replica reaches it', series: [s('mirrorgate_webhook_mirror_reachable', WEBHOOK_A, '0x15'), s('mirrorgate_webhook_mirror_reachable', WEBHOOK_B, '1x15')], at: 10, alerts: [] },
  ],
  MirrorgateWebhookDown: [
    { what: 'both replicas down', series: [s('up', WEBHOOK_A, '0x20'), s('up', WEBHOOK_B, '0x20')], at: 15, alerts: [{ labels: JOB(WEBHOOK_A), summary: 'No webhook replica has answered a scrape for 10 minutes' }] },
    { what: 'one replica down', series: [s('up', WEBHOOK_A, '0x20'), s('up', WEBHOOK_B, '1x20')], at: 15, alerts: [] },
  ],
  MirrorgateUpstreamErrors: [
    {
      what: 'a quarter of the requests fail (503 and no answer)',
      series: [s(REQUESTS, { ...blob, outcome: '200' }, '0+150x30'), s(REQUESTS, { ...blob, outcome: '503' }, '0+25x30'), s(REQUESTS, { ...blob, outcome: 'error' }, '0+25x30')],
      at: 20,
      alerts: [{ labels: { ...JOB(MIRROR), ...HUB }, summary: '25% of the requests to docker.io fail' }],
    },
    { what: 'one in twenty fails', series: [s(REQUESTS, { ...blob, outcome: '200' }, '0+100x30'), s(REQUESTS, { ...blob, outcome: '503' }, '0+5x30')], at: 20, alerts: [] },
  ],
  MirrorgateUpstreamRateLimited: [
    {
      what: 'three 429s',
      series: [s(REQUESTS, { ...blob, outcome: '200' }, '0+10x10'), s(REQUESTS, { ...blob, outcome: '429' }, '0 0 0 0 0 3x5')],
      at: 8,
      alerts: [{ labels: { ...JOB(MIRROR), ...HUB }, summary: 'docker.io answers 429 Too Many Requests' }],
    },
    { what: 'no new 429', series: [s(REQUESTS, { ...blob, outcome: '200' }, '0+10x10'), s(REQUESTS, { ...blob, outcome: '429' }, '2x10')], at: 8, alerts: [] },
  ],
  MirrorgateUpstreamQuotaLow: [
    {
      what: '8 of 100 pulls left',
      series: [s('mirrorgate_upstream_ratelimit_remaining', { ...MIRROR, ...HUB }, '8x15'), s('mirrorgate_upstream_ratelimit_limit', { ...MIRROR, ...HUB }, '100x15')],
      at: 10,
      alerts: [{ labels: { ...MIRROR, ...HUB }, summary: 'docker.io: 8% of the pull quota left' }],
    },
    { what: '40 of 100 left', series: [s('mirrorgate_upstream_ratelimit_remaining', { ...MIRROR, ...HUB }, '40x15'), s('mirrorgate_upstream_ratelimit_limit', { ...MIRROR, ...HUB }, '100x15')], at: 10, alerts: [] },
  ],
  MirrorgateCacheNearCap: [
    {
      what: 'at 97% of the cap for 45 minutes',
      series: [s('mirrorgate_cache_size_bytes', MIRROR, '97x60'), s('mirrorgate_cache_max_size_bytes', MIRROR, '100x60')],
      at: 45,
      alerts: [{ labels: MIRROR, summary: 'The cache holds 97% of mirror.storage.maxSize' }],
    },
    { what: 'at 85%', series: [s('mirrorgate_cache_size_bytes', MIRROR, '85x60'), s('mirrorgate_cache_max_size_bytes', MIRROR, '100x60')], at: 45, alerts: [] },
    { what: 'no cap configured (the gauge is 0)', series: [s('mirrorgate_cache_size_bytes', MIRROR, '97x60'), s('mirrorgate_cache_max_size_bytes', MIRROR, '0x60')], at: 45, alerts: [] },
  ],
  MirrorgateCacheEvictingHard: [
    {
      what: 'more than the cap evicted in two hours',
      series: [s('mirrorgate_cache_freed_bytes_total', { ...MIRROR, reason: 'size' }, '0+10x120'), s('mirrorgate_cache_max_size_bytes', MIRROR, '1000x120')],
      at: 120,
      alerts: [{ labels: MIRROR, summary: 'Eviction freed more than half of mirror.storage.maxSize in 6 hours' }],
    },
    {
      what: 'little evicted for size; retention and garbage do not count',
      series: [
        s('mirrorgate_cache_freed_bytes_total', { ...MIRROR, reason: 'size' }, '0+1x120'),
        s('mirrorgate_cache_freed_bytes_total', { ...MIRROR, reason: 'retention' }, '0+100x120'),
        s('mirrorgate_cache_max_size_bytes', MIRROR, '1000x120'),
      ],
      at: 120,
      alerts: [],
    },
  ],
  MirrorgateCacheVolumeLow: [
    {
      what: 'evictions for free space',
      series: [s('mirrorgate_cache_evictions_total', { ...MIRROR, reason: 'free_space' }, '0 0 0 4x5')],
      at: 5,
      alerts: [{ labels: { ...MIRROR, reason: 'free_space' }, summary: 'The cache volume fell below mirror.storage.minFreeSpace' }],
    },
    { what: 'evictions for the cap only', series: [s('mirrorgate_cache_evictions_total', { ...MIRROR, reason: 'size' }, '0+5x10')], at: 5, alerts: [] },
  ],
  MirrorgateCacheFull: [
    {
      what: 'blobs served uncached',
      series: [s('mirrorgate_cache_lookups_total', { ...MIRROR, kind: 'blob', result: 'uncached' }, '0 0 2x5')],
      at: 4,
      alerts: [{ labels: { ...MIRROR, result: 'uncached' }, summary: 'The cache volume is full' }],
    },
    { what: 'hits only', series: [s('mirrorgate_cache_lookups_total', { ...MIRROR, kind: 'blob', result: 'hit' }, '0+50x10')], at: 4, alerts: [] },
  ],
  MirrorgateVerificationFailures: [
    {
      what: 'a corrupt blob',
      series: [s('mirrorgate_upstream_verification_failures_total', { ...MIRROR, ...HUB, kind: 'blob' }, '0 0 1x5')],
      at: 4,
      alerts: [{ labels: { ...MIRROR, ...HUB, kind: 'blob' }, summary: 'docker.io sent blob content that failed verification' }],
    },
    { what: 'none', series: [s('mirrorgate_upstream_verification_failures_total', { ...MIRROR, ...HUB, kind: 'blob' }, '0x10')], at: 4, alerts: [] },
  ],
  MirrorgateWebhookFailingOpen: [
    {
      what: 'two reviews failed open on one replica',
      series: [s('mirrorgate_webhook_fail_open_total', WEBHOOK_A, '0 0 0 2x5'), s('mirrorgate_webhook_fail_open_total', WEBHOOK_B, '0x8')],
      at: 4,
      alerts: [{ labels: WEBHOOK_A, summary: 'The webhook admitted pods unchanged after internal errors (mirrorgate-webhook-a)' }],
    },
    { what: 'none', series: [s('mirrorgate_webhook_fail_open_total', WEBHOOK_A, '0x8'), s('mirrorgate_webhook_fail_open_total', WEBHOOK_B, '0x8')], at: 4, alerts: [] },
  ],
  MirrorgatePullSecretSyncFailing: [
    {
      what: 'a Secret of that name not managed by mirrorgate',
      series: [s('mirrorgate_webhook_pull_secret_sync_total', { ...WEBHOOK_A, action: 'conflict' }, '0 0 1x5')],
      at: 3,
      alerts: [{ labels: { ...WEBHOOK_A, action: 'conflict' }, summary: 'Pull secret copies not written (conflict)' }],
    },
    { what: 'copies created', series: [s('mirrorgate_webhook_pull_secret_sync_total', { ...WEBHOOK_A, action: 'created' }, '0+3x10')], at: 3, alerts: [] },
  ],
  MirrorgateWebhookCertificateExpiring: [
    {
      what: 'ten days left',
      series: [s('mirrorgate_webhook_cert_not_after_seconds', WEBHOOK_A, `${TEN_DAYS}x120`)],
      at: 90,
      alerts: [{ labels: WEBHOOK_A, summary: "The webhook's serving certificate expires in 9d 22h 30m 0s (mirrorgate-webhook-a)" }],
    },
    { what: 'thirty days left', series: [s('mirrorgate_webhook_cert_not_after_seconds', WEBHOOK_A, `${3 * TEN_DAYS}x120`)], at: 90, alerts: [] },
  ],
  MirrorgateMirrorCertificateExpiring: [
    {
      what: 'ten days left',
      series: [s('mirrorgate_mirror_cert_not_after_seconds', MIRROR, `${TEN_DAYS}x120`)],
      at: 90,
      alerts: [{ labels: MIRROR, summary: "The mirror's mirror.tls certificate expires in 9d 22h 30m 0s" }],
    },
    { what: 'no mirror.tls (the gauge is 0)', series: [s('mirrorgate_mirror_cert_not_after_seconds', MIRROR, '0x120')], at: 90, alerts: [] },
  ],
};

const selector = (x: Series): string => `${x.name}{${Object.entries(x.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;

/** promtool's unit test file: one test group per scenario, each expecting exactly its alerts. */
function promtoolTests(scenarios: Record<string, Scenario[]>): string {
  const byName = new Map(allRules().map((r) => [r.alert, r]));
  const tests = Object.entries(scenarios).flatMap(([alert, list]) =>
    list.map((sc) => {
      const rule = byName.get(alert)!;
      return {
        name: `${alert}: ${sc.what}`,
        interval: '1m',
        input_series: sc.series.map((x) => ({ series: selector(x), values: x.values })),
        alert_rule_test: [
          {
            eval_time: `${sc.at}m`,
            alertname: alert,
            exp_alerts: sc.alerts.map((a) => ({ exp_labels: { ...rule.labels, ...a.labels }, exp_annotations: { ...rule.annotations, summary: a.summary } })),
          },
        ],
      };
    }),
  );
  return stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests });
}

describe('the alerting rules', () => {
  it('are the same in the component and the chart, and pass promtool check rules', () => {
    expect(find(renderings['chart: monitoring']!.objects, 'PrometheusRule').spec).toEqual(rules);
    writeFileSync(path.join(work.path, 'rules.yaml'), stringify(rules));
    const r = promtool(['check', 'rules', 'rules.yaml'], work.path);
    expect(r.output).toContain(`SUCCESS: ${allRules().length} rules found`);
    expect(r.status, r.output).toBe(0);
  });

  it('have a firing and a quiet scenario for every alert, and static descriptions (summaries carry the labels)', () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual(allRules().map((r) => r.alert).sort());
    for (const [alert, list] of Object.entries(SCENARIOS)) {
      expect(list.some((sc) => sc.alerts.length > 0), `${alert} fires somewhere`).toBe(true);
      expect(list.some((sc) => sc.alerts.length === 0), `${alert} stays quiet somewhere`).toBe(true);
    }
    for (const rule of allRules()) {
      expect(Object.keys(rule.annotations).sort(), rule.alert).toEqual(['description', 'summary']);
      expect(rule.annotations.description, rule.alert).not.toContain('{{');
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels.severity);
    }
  });

  it('feed promtool only series the code exports', () => {
    const names = new Set(Object.values(SCENARIOS).flatMap((list) => list.flatMap((sc) => sc.series.map((x) => x.name))));
    const unknown = [...names].filter((n) => !exported.has(n) && !PROMETHEUS_SERIES.has(n));
    expect(unknown, `not exported: ${unknown.join(', ')}`).toEqual([]);
  });

  it('fire and stay quiet as each scenario says (promtool test rules)', () => {
    writeFileSync(path.join(work.path, 'rules.yaml'), stringify(rules));
    writeFileSync(path.join(work.path, 'tests.yaml'), promtoolTests(SCENARIOS));
    const r = promtool(['test', 'rules', 'tests.yaml'], work.path);
    expect(r.output).toContain('SUCCESS');
    expect(r.status, r.output).toBe(0);
  });

  it('fail the promtool run when a scenario expects what does not happen', () => {
    const [alert, list] = Object.entries(SCENARIOS)[0]!;
    const firing = list.find((sc) => sc.alerts.length > 0)!;
    writeFileSync(path.join(work.path, 'rules.yaml'), stringify(rules));
    writeFileSync(path.join(work.path, 'wrong.yaml'), promtoolTests({ [alert]: [{ ...firing, alerts: [] }] }));
    const r = promtool(['test', 'rules', 'wrong.yaml'], work.path);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain(alert);
  });
});
