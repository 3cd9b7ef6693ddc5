import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkCertManager,
  checkImages,
  checkIngress,
  checkMirror,
  checkMirrorProbe,
  checkNamespacing,
  checkNodeTrust,
  checkSecurityContexts,
  checkWebhook,
  checkWebhookConfiguration,
  checkWebhookRbac,
  loadRenderedConfig,
  podSpec,
  portOf,
  type Rendering,
  type Tree,
} from '../../helpers/deploy/checks.js';
import { validateObjects } from '../../helpers/deploy/k8s-schema.js';
import { all, find, overlays, render, ROOT } from '../../helpers/deploy/kustomize.js';

const NAMESPACE = 'mirrorgate';
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const renderings: Array<Rendering & { dir: string }> = [];

beforeAll(async () => {
  for (const dir of ['base', ...overlays()]) {
    const objects = render(dir);
    renderings.push({ dir, objects, config: await loadRenderedConfig(objects), namespace: NAMESPACE });
  }
}, 60_000);

describe('manifests/', () => {
  it('has the overlays the docs name', () => {
    expect(overlays()).toEqual(['overlays/cert-manager', 'overlays/dev', 'overlays/private-ca', 'overlays/replicas-aws', 'overlays/replicas-ceph']);
  });

  describe.each(['base', 'overlays/cert-manager', 'overlays/dev', 'overlays/private-ca', 'overlays/replicas-aws', 'overlays/replicas-ceph'])('%s', (dir) => {
    const get = (): Rendering => renderings.find((r) => r.dir === dir)!;

    it('renders objects that validate against the Kubernetes and cert-manager schemas (kubernetes-models)', async () => {
      // Rook's ObjectBucketClaim has no models; replicas-ceph checks it below.
      expect(await validateObjects(get().objects.filter((o) => o.kind !== 'ObjectBucketClaim'))).toEqual([]);
    });

    it('puts every namespaced object in the mirrorgate namespace, which it creates', () => {
      expect(find(get().objects, 'Namespace', NAMESPACE)).toBeDefined();
      checkNamespacing(get());
    });

    it('runs one image, tagged with the package version, for every command', () => {
      checkImages(get(), `mirrorgate:${VERSION}`);
    });

    it('serves the mirror on the configured port, with its probes, config file, cache volume and htpasswd', () => {
      checkMirror(get());
    });

    it('serves the webhook on the configured port behind webhook.serviceName, two replicas under a PodDisruptionBudget', () => {
      checkWebhook(get());
    });

    it('registers the MutatingWebhookConfiguration the webhook keeps, with the selectors and policies the code expects', () => {
      checkWebhookConfiguration(get());
    });

    it('grants the webhook exactly the permissions its API calls need', () => {
      checkWebhookRbac(get());
    });

    it('runs every pod with a restricted security context (the node-trust DaemonSet: root, nothing more)', () => {
      checkSecurityContexts(get());
    });
  });

  describe('components', () => {
    const get = (dir: string): Rendering => renderings.find((r) => r.dir === dir)!;

    it('cert-manager: the webhook serves cert-manager files for its Service names; cainjector fills the caBundle', () => {
      for (const dir of ['overlays/cert-manager', 'overlays/private-ca']) checkCertManager(get(dir));
      expect(get('base').objects.some((o) => o.kind === 'Certificate')).toBe(false);
      expect(find(get('base').objects, 'MutatingWebhookConfiguration').metadata.annotations).toBeUndefined();
    });

    it('ingress: the mirror at webhook.mirrorHost, its certificate for that name, no body limit, long timeouts', () => {
      for (const dir of ['overlays/cert-manager', 'overlays/private-ca']) checkIngress(get(dir));
    });

    it('node-trust: runs the product hosts-toml on the rendered configuration into the node directory, CA from the mirror certificate', async () => {
      const r = get('overlays/private-ca');
      await checkNodeTrust(r);
      expect(find(r.objects, 'Namespace', NAMESPACE).metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('privileged');
    });

    it('dev: the mirror on a NodePort that webhook.mirrorHost names as localhost', () => {
      const { objects, config } = get('overlays/dev');
      const svc = find(objects, 'Service', 'mirrorgate-mirror');
      expect((svc.spec as Tree).type).toBe('NodePort');
      expect(config.webhook.mirrorHost).toBe(`localhost:${(svc.spec as Tree).ports[0].nodePort as number}`);
      expect(config.webhook.mirrorProbe.url).toBe(`http://mirrorgate-mirror.${NAMESPACE}.svc:${portOf(config.mirror.listen)}/v2/`);
    });

    it('replicas: several mirrors on a bucket and Redis, no claim on a volume, a PDB, spread across nodes', () => {
      for (const dir of ['overlays/replicas-aws', 'overlays/replicas-ceph']) {
        const { config } = get(dir);
        expect(config.mirror.storage.s3).toBeDefined();
        expect(config.mirror.redis).toBeDefined();
      }
      expect(all(get('base').objects, 'PodDisruptionBudget').map((p) => p.metadata.name)).toEqual(['mirrorgate-webhook']);
    });

    it('replicas-ceph: a Rook ObjectBucketClaim for the configured bucket, whose Secret the mirror reads its keys from', () => {
      const { objects, config } = get('overlays/replicas-ceph');
      const obc = find(objects, 'ObjectBucketClaim', 'mirrorgate-s3');
      expect(obc.apiVersion).toBe('objectbucket.io/v1alpha1');
      expect(obc.metadata.namespace).toBe(NAMESPACE);
      expect(Object.keys(obc.spec as Tree).sort()).toEqual(['bucketName', 'storageClassName']);
      expect((obc.spec as Tree).bucketName).toBe(config.mirror.storage.s3!.bucket);
      expect(config.mirror.storage.s3!.forcePathStyle).toBe(true);
      expect(config.mirror.storage.s3!.endpoint).toMatch(/^http:\/\/rook-ceph-rgw-/);
    });

    it('replicas-aws: IRSA through an annotated ServiceAccount the mirror runs as, no endpoint, redirects on', () => {
      const { objects, config } = get('overlays/replicas-aws');
      const deploy = find(objects, 'Deployment', 'mirrorgate-mirror');
      const sa = find(objects, 'ServiceAccount', podSpec(deploy).serviceAccountName as string);
      expect(sa.metadata.annotations!['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\//);
      expect(podSpec(deploy).automountServiceAccountToken).toBe(false);
      expect(config.mirror.storage.s3!.endpoint).toBeUndefined();
      expect(config.mirror.storage.s3!.redirect).toBe(true);
    });

    it('every rendering probes the mirror through its Service', () => {
      for (const r of renderings) checkMirrorProbe(r);
    });
  });
});
