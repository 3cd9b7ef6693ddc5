import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { valuesSchemaText, VALUES_SCHEMA } from '../../../scripts/chart-schema.js';
import {
  checkCertManager,
  checkImages,
  checkIngress,
  checkMirror,
  checkMirrorProbe,
  checkMonitoring,
  checkNamespacing,
  checkNodeTrust,
  checkSecurityContexts,
  checkWebhook,
  checkWebhookConfiguration,
  checkWebhookRbac,
  loadRenderedConfig,
  podSpec,
  type Rendering,
  type Tree,
} from '../../helpers/deploy/checks.js';
import { essentials } from '../../helpers/deploy/essentials.js';
import { CHART, helm, helmNotes, helmTemplate } from '../../helpers/deploy/helm.js';
import { validateObjects } from '../../helpers/deploy/k8s-schema.js';
import { all, find, render, ROOT, type K8sObject } from '../../helpers/deploy/kustomize.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const PRIVATE_CA = { certManager: { enabled: true }, ingress: { enabled: true }, nodeTrust: { enabled: true }, config: { mirror: { auth: { anonymousRead: true } } } };

/** Value sets the chart is rendered with, each with the namespace it is installed in and the components it turns on. */
interface ValueSet {
  values: Tree;
  namespace: string;
  image: string;
  components: Array<'certManager' | 'ingress' | 'nodeTrust' | 'monitoring'>;
}
const SETS: Record<string, ValueSet> = {
  default: { values: {}, namespace: 'mirrorgate', image: `mirrorgate:${VERSION}`, components: [] },
  'cert-manager and ingress': { values: { certManager: { enabled: true }, ingress: { enabled: true } }, namespace: 'mirrorgate', image: `mirrorgate:${VERSION}`, components: ['certManager', 'ingress'] },
  'node trust': { values: { ...PRIVATE_CA, namespace: { create: true } }, namespace: 'mirrorgate', image: `mirrorgate:${VERSION}`, components: ['certManager', 'ingress', 'nodeTrust'] },
  monitoring: {
    values: { monitoring: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, prometheusRule: { enabled: true }, dashboard: { enabled: true } } },
    namespace: 'mirrorgate',
    image: `mirrorgate:${VERSION}`,
    components: ['monitoring'],
  },
  'custom host, image, names and ports, with every component': {
    values: {
      image: { repository: 'harbor.internal.example/platform/mirrorgate', tag: '0.1.0-rc.1' },
      imagePullSecrets: [{ name: 'harbor' }],
      certManager: { enabled: true },
      ingress: { enabled: true },
      nodeTrust: { enabled: true },
      monitoring: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } },
      config: {
        mirror: { listen: ':5050', auth: { anonymousRead: true } },
        webhook: { listen: ':9443', mirrorHost: 'mirror.internal.example', serviceName: 'registry-webhook', webhookConfigurationName: 'registry-mirror', tlsSecretName: 'registry-webhook-tls' },
      },
    },
    namespace: 'platform-mirror',
    image: 'harbor.internal.example/platform/mirrorgate:0.1.0-rc.1',
    components: ['certManager', 'ingress', 'nodeTrust', 'monitoring'],
  },
  'a local cluster: NodePort, small cache': {
    values: { mirror: { service: { type: 'NodePort', nodePort: 30500 }, persistence: { size: '10Gi' } }, config: { mirror: { storage: { maxSize: '8GiB', minFreeSpace: null } }, webhook: { mirrorHost: 'localhost:30500' } } },
    namespace: 'mirrorgate',
    image: `mirrorgate:${VERSION}`,
    components: [],
  },
  'replicas on Ceph RGW with Redis': {
    values: {
      mirror: { replicas: 3 },
      config: {
        mirror: {
          storage: { path: '/var/lib/mirrorgate', maxSize: '200GiB', minFreeSpace: null, s3: { endpoint: 'http://rook-ceph-rgw-my-store.rook-ceph.svc', bucket: 'mirrorgate-cache', forcePathStyle: true } },
          redis: { url: 'redis://redis-master.redis.svc:6379' },
        },
      },
    },
    namespace: 'mirrorgate',
    image: `mirrorgate:${VERSION}`,
    components: [],
  },
  'replicas on AWS S3 with IRSA and redirects': {
    values: {
      mirror: { replicas: 2, serviceAccount: { create: true, annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/mirrorgate-mirror' } } },
      config: {
        mirror: {
          storage: { path: '/var/lib/mirrorgate', maxSize: '500GiB', minFreeSpace: null, s3: { bucket: 'example-mirrorgate-cache', region: 'eu-west-1', redirect: true } },
          redis: { url: 'rediss://master.mirrorgate.abc123.euw1.cache.amazonaws.com:6379' },
        },
      },
    },
    namespace: 'mirrorgate',
    image: `mirrorgate:${VERSION}`,
    components: [],
  },
  'the mirror serving TLS itself': {
    values: { mirror: { tls: { secretName: 'mirror-serving' } }, monitoring: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } } },
    namespace: 'mirrorgate',
    image: `mirrorgate:${VERSION}`,
    components: ['monitoring'],
  },
};

const renderings = new Map<string, Rendering>();

beforeAll(async () => {
  for (const [name, set] of Object.entries(SETS)) {
    const objects = helmTemplate(set.values, set.namespace);
    renderings.set(name, { objects, config: await loadRenderedConfig(objects), namespace: set.namespace });
  }
}, 120_000);

describe('charts/mirrorgate', () => {
  it('carries the package version as its version and appVersion', () => {
    const chart = parseYaml(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    expect(chart).toMatchObject({ version: VERSION, appVersion: VERSION });
  });

  it("embeds the product's configuration schema in values.schema.json (npx tsx scripts/chart-schema.ts writes it)", () => {
    const text = readFileSync(VALUES_SCHEMA, 'utf8');
    expect(text).toBe(valuesSchemaText(text));
  });

  describe.each(Object.keys(SETS))('%s', (name) => {
    const set = SETS[name]!;
    const get = (): Rendering => renderings.get(name)!;

    it('passes helm lint', () => {
      const r = helm(['lint', '--strict', '--namespace', set.namespace], set.values);
      expect(r.stderr).toBe('');
      expect(r.status, r.stdout).toBe(0);
    });

    it('renders objects that validate against the Kubernetes, cert-manager and Prometheus Operator schemas (kubernetes-models)', async () => {
      expect(await validateObjects(get().objects)).toEqual([]);
    });

    it('puts every namespaced object in the release namespace', () => {
      checkNamespacing(get());
    });

    it('runs one image for every command', () => {
      checkImages(get(), set.image);
    });

    it('serves the mirror on the configured port, with its probes, config file, cache volume and htpasswd', () => {
      checkMirror(get());
      checkMirrorProbe(get());
    });

    it('serves the webhook on the configured port behind webhook.serviceName, two replicas under a PodDisruptionBudget', () => {
      checkWebhook(get());
    });

    it('registers the MutatingWebhookConfiguration: fail open, no side effects, opt-in namespaces only, never the system ones', () => {
      checkWebhookConfiguration(get());
    });

    it('grants the webhook exactly the permissions its API calls need', () => {
      checkWebhookRbac(get());
    });

    it('runs every pod with a restricted security context (the node-trust DaemonSet: root, nothing more)', () => {
      checkSecurityContexts(get());
    });

    it('renders the components it turns on, and only those', async () => {
      const { objects } = get();
      const has = (c: ValueSet['components'][number]): boolean => set.components.includes(c);
      if (has('certManager')) checkCertManager(get());
      if (has('ingress')) checkIngress(get());
      if (has('nodeTrust')) await checkNodeTrust(get());
      if (has('monitoring')) checkMonitoring(get());
      expect(all(objects, 'Certificate').length > 0).toBe(has('certManager'));
      expect(all(objects, 'Ingress').length > 0).toBe(has('ingress'));
      expect(all(objects, 'DaemonSet').length > 0).toBe(has('nodeTrust'));
      expect(all(objects, 'ServiceMonitor').length > 0).toBe(has('monitoring'));
    });

    it('rolls the pods that read the configuration when it changes (checksum/config)', () => {
      const { objects } = get();
      const changed = helmTemplate({ ...set.values, config: { ...set.values.config, log: { level: 'debug' } } }, set.namespace);
      for (const w of [...all(objects, 'Deployment'), ...all(objects, 'DaemonSet')]) {
        const checksum = (o: K8sObject): string => (o.spec as Tree).template.metadata.annotations['checksum/config'] as string;
        expect(checksum(w), w.metadata.name).toMatch(/^[0-9a-f]{64}$/);
        expect(checksum(find(changed, w.kind, w.metadata.name)), w.metadata.name).not.toBe(checksum(w));
      }
    });
  });

  describe('values', () => {
    it('reaches every configuration field: the rendered file is the values tree, plus the probe URL', () => {
      const config = {
        upstreams: { 'docker.io': { url: 'https://registry-1.docker.io', credentials: { username: { env: 'HUB_USER' }, password: { file: '/run/hub/password' } }, maxConnections: 16 } },
        mirror: { listen: ':5000', storage: { path: '/var/lib/mirrorgate', maxSize: '45GiB' }, cache: { highWater: 0.85, lowWater: 0.7, gcInterval: '30m' }, retention: [{ repository: 'library/**', keepLast: 3 }], limits: { upstreamFetches: 64 } },
        webhook: { mirrorHost: 'registry.example.com', exclude: ['registry.k8s.io/**'], mirrorProbe: { whenUnreachable: 'rewrite' }, injectPullSecret: false },
        log: { level: 'warn' },
      };
      const objects = helmTemplate({ config });
      const text = (find(objects, 'ConfigMap', 'mirrorgate-config').data as Record<string, string>)['config.yaml']!;
      const rendered = parseYaml(text) as Tree;
      expect(rendered).toMatchObject(config);
      expect(rendered.mirror.auth).toEqual({ htpasswd: '/etc/mirrorgate/auth/htpasswd' });
      expect(rendered.webhook.mirrorProbe).toEqual({ whenUnreachable: 'rewrite', url: 'http://mirrorgate-mirror.mirrorgate.svc:5000/v2/' });
    });

    it('takes a Secret you manage for the users, or none at all', async () => {
      const existing = helmTemplate({ htpasswd: { existingSecret: 'my-users' } });
      expect(all(existing, 'Secret')).toEqual([]);
      expect((podSpec(find(existing, 'Deployment', 'mirrorgate-mirror')).volumes as Tree[]).find((v) => v.name === 'htpasswd')!.secret.secretName).toBe('my-users');
      const open = helmTemplate({ config: { mirror: { auth: { htpasswd: null } } } });
      expect(all(open, 'Secret')).toEqual([]);
      expect((podSpec(find(open, 'Deployment', 'mirrorgate-mirror')).volumes as Tree[]).map((v) => v.name)).not.toContain('htpasswd');
      expect((await loadRenderedConfig(open)).mirror.auth.htpasswd).toBeUndefined();
    });

    it('replicas: no claim, a PDB from two mirror replicas on, the mirror as the annotated ServiceAccount when asked', () => {
      const onS3 = { config: { mirror: { storage: { path: '/var/lib/mirrorgate', s3: { bucket: 'mirror-cache' } } } } };
      const one = helmTemplate(onS3);
      expect(all(one, 'PersistentVolumeClaim')).toEqual([]);
      expect(all(one, 'PodDisruptionBudget').map((p) => p.metadata.name)).toEqual(['mirrorgate-webhook']);
      expect(podSpec(find(one, 'Deployment', 'mirrorgate-mirror')).serviceAccountName).toBeUndefined();
      const three = helmTemplate({ ...onS3, mirror: { replicas: 3, s3: { credentialsSecret: 'my-bucket' } } });
      expect(find(three, 'PodDisruptionBudget', 'mirrorgate-mirror').spec).toMatchObject({ maxUnavailable: 1 });
      expect(podSpec(find(three, 'Deployment', 'mirrorgate-mirror')).containers[0].envFrom).toEqual([{ secretRef: { name: 'my-bucket', optional: true } }]);
      const irsa = find(helmTemplate(SETS['replicas on AWS S3 with IRSA and redirects']!.values), 'ServiceAccount', 'mirrorgate-mirror');
      expect(irsa.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/mirrorgate-mirror' });
      expect(irsa.automountServiceAccountToken).toBe(false);
    });

    it('keeps a PodDisruptionBudget only with two replicas or more', () => {
      expect(all(helmTemplate({ webhook: { replicas: 1 } }), 'PodDisruptionBudget')).toEqual([]);
      expect(find(helmTemplate({ webhook: { replicas: 3 } }), 'Deployment', 'mirrorgate-webhook').spec).toMatchObject({ replicas: 3 });
    });

    it('puts the dashboard where Grafana looks, and the issuer of the mirror certificate you name', () => {
      const objects = helmTemplate({ monitoring: { dashboard: { enabled: true, namespace: 'monitoring' } }, certManager: { enabled: true, mirrorIssuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' } } });
      expect(find(objects, 'ConfigMap', 'mirrorgate-grafana-dashboard').metadata.namespace).toBe('monitoring');
      expect((find(objects, 'Certificate', 'mirrorgate-mirror-tls').spec as Tree).issuerRef).toEqual({ name: 'letsencrypt', kind: 'ClusterIssuer' });
    });
  });

  describe('bad values', () => {
    const refused = (values: Tree): string => {
      const r = helm(['template', 'mirrorgate', '--namespace', 'mirrorgate'], values);
      expect(r.status, `accepted ${JSON.stringify(values)}`).not.toBe(0);
      return r.stderr;
    };

    it.each([
      ['a misspelt value', { ingres: { enabled: true } }, /Additional property ingres is not allowed/],
      ['a misspelt configuration field', { config: { mirror: { storage: { maxsize: '1GiB' } } } }, /config\.mirror\.storage: Additional property maxsize is not allowed/],
      ['a configuration field of the wrong type', { config: { mirror: { auth: { anonymousRead: 'yes' } } } }, /config\.mirror\.auth\.anonymousRead: Invalid type/],
      ['a configuration value out of range', { config: { mirror: { cache: { highWater: 2 } } } }, /config\.mirror\.cache\.highWater: Must be less than or equal to 1/],
      ['an upstream key that is not a registry host', { config: { upstreams: { 'Docker Hub': { url: 'https://registry-1.docker.io' } } } }, /config\.upstreams: Property name of "Docker Hub" does not match/],
      ['an unknown log level', { config: { log: { level: 'loud' } } }, /config\.log\.level/],
      ['an unknown service type', { mirror: { service: { type: 'External' } } }, /mirror\.service\.type/],
      ['a volume size that is not a quantity', { mirror: { persistence: { size: '50 gigs' } } }, /mirror\.persistence\.size: Does not match pattern/],
      ['a replica count that is not a number', { webhook: { replicas: 'two' } }, /webhook\.replicas: Invalid type/],
      ['no mirror replica', { mirror: { replicas: 0 } }, /mirror\.replicas: Must be greater than or equal to 1/],
      ['a scrape interval that is not a duration', { monitoring: { serviceMonitor: { interval: 'often' } } }, /monitoring\.serviceMonitor\.interval: Does not match pattern/],
    ])('refuses %s (values.schema.json)', (_what, values, message) => {
      expect(refused(values)).toMatch(message);
    });

    it.each([
      ['a relative storage path', { config: { mirror: { storage: { path: 'data' } } } }, /config\.mirror\.storage\.path must be an absolute path/],
      ['mirror.tls without the Secret holding its files', { config: { mirror: { tls: { cert: '/a', key: '/b' } } } }, /config\.mirror\.tls needs mirror\.tls\.secretName/],
      ['an Ingress for a host with a port', { ingress: { enabled: true }, config: { webhook: { mirrorHost: 'mirror.example:5000' } } }, /must not name a port/],
      ['no mirror host', { ingress: { enabled: true }, config: { webhook: { mirrorHost: null } } }, /config\.webhook\.mirrorHost: set the host/],
      ['mirror replicas on a volume', { mirror: { replicas: 2 } }, /mirror\.replicas above 1 needs config\.mirror\.storage\.s3/],
    ])('refuses %s (the templates)', (_what, values, message) => {
      expect(refused(values)).toMatch(message);
    });
  });

  describe('NOTES.txt', () => {
    it('tells the next steps: label the namespace, create the pull secret source, opt a namespace in', () => {
      const notes = helmNotes({ config: { webhook: { mirrorHost: 'mirror.internal.example' } } }, 'platform-mirror');
      expect(notes).toContain('kubectl label namespace platform-mirror pod-security.kubernetes.io/enforce=restricted');
      expect(notes).toContain('mirrorgate pull-secret --user USER --server mirror.internal.example --namespace platform-mirror | kubectl apply -f -');
      expect(notes).toContain('kubectl label namespace NAMESPACE mirrorgate.io/mirror=enabled');
      expect(notes).toContain('admitted as mirror.internal.example/library/nginx:latest');
      expect(notes).toContain('The htpasswd file has no users yet');
    });

    it('warns about what a value set leaves to do', () => {
      const withUsers = helmNotes({ htpasswd: { content: 'alice:$2y$05$abcdefghijklmnopqrstuu5Mg1TFpSKKCHV6/jcM8K2rXsbkUhHzW\n' }, nodeTrust: { enabled: true }, namespace: { create: true } });
      expect(withUsers).not.toContain('no users yet');
      expect(withUsers).not.toContain('pod-security.kubernetes.io/enforce=');
      expect(withUsers).toContain('without config.mirror.auth.anonymousRead');
      expect(withUsers).toContain('The Secret mirrorgate-mirror-tls (tls.crt, tls.key, ca.crt)');
      expect(helmNotes({ config: { mirror: { auth: { htpasswd: null } } } })).toContain('The mirror has no authentication');
      expect(helmNotes({ config: { webhook: { pullSecretSourceName: 'pulls' } } })).toContain('--namespace mirrorgate --name pulls |');
    });
  });
});

describe('the chart and manifests/ render the same deployment for the same settings', () => {
  it.each([
    ['base', {}],
    ['overlays/cert-manager', { certManager: { enabled: true }, ingress: { enabled: true } }],
    ['overlays/private-ca', PRIVATE_CA],
    ['overlays/dev', SETS['a local cluster: NodePort, small cache']!.values],
  ])('%s', async (dir, values) => {
    const kustomized = render(dir);
    const charted = helmTemplate({ ...values, namespace: { create: true } });
    const a = essentials(kustomized, await loadRenderedConfig(kustomized));
    const b = essentials(charted, await loadRenderedConfig(charted));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [key, value] of a) expect(b.get(key), key).toEqual(value);
  });
});

