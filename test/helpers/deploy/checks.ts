import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { parseListen } from '../../../src/config/listen.js';
import type { Config } from '../../../src/config/schema.js';
import { runHostsToml } from '../../../src/deploy/hosts-toml-command.js';
import { WEBHOOK_API_CALLS } from '../../../src/deploy/webhook-permissions.js';
import { parseHtpasswd } from '../../../src/mirror/auth/htpasswd.js';
import { serviceDnsNames } from '../../../src/webhook/certs.js';
import { OPT_IN_LABEL, OPT_IN_VALUE, OPT_OUT_VALUE } from '../../../src/webhook/labels.js';
import { makeTempDir } from '../tmp.js';
import { all, find, type K8sObject } from './kustomize.js';

/**
 * What a rendering of mirrorgate's deployment must satisfy, whichever tool rendered it (`kubectl kustomize` of
 * manifests/, `helm template` of charts/mirrorgate): names, ports, probes, mounts, selectors, RBAC against the
 * code's API calls, the webhook registration's safety settings. Each check asserts with vitest's `expect`.
 */

// `any`: rendered manifests are parsed YAML trees; each field is checked by the assertions that read it.
export type Tree = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);

/** Rendered objects, the configuration their ConfigMap holds, and the namespace they were rendered for. */
export interface Rendering {
  objects: K8sObject[];
  config: Config;
  namespace: string;
}

/** The rendered configuration file, loaded by the product's own loader from a real file. */
export async function loadRenderedConfig(objects: K8sObject[]): Promise<Config> {
  const cms = all(objects, 'ConfigMap').filter((c) => c.metadata.name.startsWith('mirrorgate-config'));
  expect(cms).toHaveLength(1);
  const text = (cms[0]!.data as Record<string, string>)['config.yaml'];
  expect(text, 'ConfigMap key config.yaml').toBeTypeOf('string');
  const dir = await makeTempDir('mirrorgate-manifests-');
  try {
    const file = path.join(dir.path, 'config.yaml');
    writeFileSync(file, text!);
    return loadConfig({ file, env: {} });
  } finally {
    await dir.cleanup();
  }
}

export const podSpec = (o: K8sObject): Tree => (o.spec as Tree).template.spec as Tree;
export const containers = (o: K8sObject): Tree[] => [...((podSpec(o).initContainers as Tree[] | undefined) ?? []), ...(podSpec(o).containers as Tree[])];
export const workloads = (objects: K8sObject[]): K8sObject[] => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
export const container = (o: K8sObject, name: string): Tree => {
  const c = containers(o).find((x) => x.name === name);
  if (!c) throw new Error(`${o.metadata.name}: no container ${name}`);
  return c;
};
export const portOf = (listen: string): number => parseListen(listen)!.port;
export const argAfter = (args: string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
};

/** Where a file path lands: the volume mounted at a parent directory, and the key under it. */
export function volumeFor(workload: K8sObject, c: Tree, file: string): { volume: Tree; key: string } {
  const mount = (c.volumeMounts as Tree[]).find((m) => file.startsWith(`${m.mountPath as string}/`));
  if (!mount) throw new Error(`${file} is not under a mount of ${c.name as string}`);
  expect(mount.subPath, 'subPath mounts do not see updates').toBeUndefined();
  const volume = (podSpec(workload).volumes as Tree[]).find((v) => v.name === mount.name)!;
  return { volume, key: file.slice((mount.mountPath as string).length + 1) };
}

/** Kubernetes label selector semantics (matchLabels and matchExpressions), for the webhook's selectors. */
export function selects(selector: Tree, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries((selector.matchLabels as Record<string, string> | undefined) ?? {})) if (labels[k] !== v) return false;
  for (const e of (selector.matchExpressions as Tree[] | undefined) ?? []) {
    const has = e.key in labels;
    const value = labels[e.key as string];
    const values = (e.values as string[] | undefined) ?? [];
    if (e.operator === 'In' && !(has && values.includes(value!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(value!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** Every namespaced object in the rendering's namespace, cluster-scoped ones in none. */
export function checkNamespacing({ objects, config, namespace }: Rendering): void {
  for (const o of objects) {
    if (CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
    else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(namespace);
  }
  // The webhook's namespace is the pod's own (POD_NAMESPACE) unless the configuration names one.
  expect(config.webhook.namespace ?? namespace).toBe(namespace);
}

/** Every container of every workload runs `image`. */
export function checkImages({ objects }: Rendering, image: string): void {
  const images = new Set(workloads(objects).flatMap((w) => containers(w).map((c) => c.image as string)));
  expect([...images]).toEqual([image]);
}

/** The mirror: port, probes, config file, cache volume (or replicas on object storage), htpasswd, shutdown grace. */
export function checkMirror({ objects, config }: Rendering): void {
  const deploy = find(objects, 'Deployment', 'mirrorgate-mirror');
  const c = container(deploy, 'mirror');
  const port = portOf(config.mirror.listen);
  expect(c.ports).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
  const svc = find(objects, 'Service', 'mirrorgate-mirror');
  expect((svc.spec as Tree).ports).toMatchObject([{ port, targetPort: 'http' }]);
  expect(selects({ matchLabels: (svc.spec as Tree).selector }, (deploy.spec as Tree).template.metadata.labels)).toBe(true);
  const scheme = config.mirror.tls ? 'HTTPS' : 'HTTP';
  expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme });
  expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http', scheme });
  expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme });

  expect(c.args[0]).toBe('mirror');
  const configFile = argAfter(c.args as string[], '--config')!;
  const cm = volumeFor(deploy, c, configFile);
  expect(cm.volume.configMap.name).toMatch(/^mirrorgate-config/);
  expect(cm.key).toBe('config.yaml');

  const storage = (c.volumeMounts as Tree[]).find((m) => m.mountPath === config.mirror.storage.path);
  expect(storage, 'a volume at mirror.storage.path').toBeDefined();
  const volume = (podSpec(deploy).volumes as Tree[]).find((v) => v.name === storage!.name)!;
  if (config.mirror.storage.s3) checkReplicas({ objects, config }, volume);
  else {
    const pvc = find(objects, 'PersistentVolumeClaim', volume.persistentVolumeClaim.claimName as string);
    expect((pvc.spec as Tree).accessModes).toEqual(['ReadWriteOnce']);
    // One writer: a second pod would find the storage locked.
    expect((deploy.spec as Tree).replicas).toBe(1);
    expect((deploy.spec as Tree).strategy).toEqual({ type: 'Recreate' });
    const sizeOf = (q: string): number => Number(/^(\d+)Gi$/.exec(q)![1]) * 2 ** 30;
    if (config.mirror.storage.maxSize !== undefined) expect(config.mirror.storage.maxSize).toBeLessThan(sizeOf((pvc.spec as Tree).resources.requests.storage as string));
  }

  const htpasswdFile = config.mirror.auth.htpasswd!;
  expect(htpasswdFile).toBeDefined();
  const hp = volumeFor(deploy, c, htpasswdFile);
  const secret = find(objects, 'Secret', hp.volume.secret.secretName as string);
  const text = Buffer.from((secret.data as Record<string, string>)[hp.key]!, 'base64').toString('utf8');
  expect(() => parseHtpasswd(text)).not.toThrow();

  if (config.mirror.tls) {
    for (const file of [config.mirror.tls.cert, config.mirror.tls.key]) expect(volumeFor(deploy, c, file).volume.secret.secretName, file).toBeTypeOf('string');
  }

  // mirror.shutdownGrace to drain, then the kubelet's SIGKILL.
  expect(podSpec(deploy).terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.mirror.shutdownGrace);
}

/**
 * Replicas on object storage: no volume shared between pods (an emptyDir at the storage path, no claim), a
 * rolling update, a PodDisruptionBudget over the mirror's pods, spread across nodes, the object store's
 * credentials from the environment, one push's requests kept on one replica, Redis configured.
 */
export function checkReplicas({ objects, config }: Omit<Rendering, 'namespace'>, storageVolume: Tree): void {
  const deploy = find(objects, 'Deployment', 'mirrorgate-mirror');
  const spec = deploy.spec as Tree;
  expect(storageVolume.emptyDir, 'an emptyDir at mirror.storage.path').toBeDefined();
  expect(objects.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);
  expect(spec.replicas).toBeGreaterThanOrEqual(2);
  expect(spec.strategy.type).toBe('RollingUpdate');
  const labels = spec.template.metadata.labels as Record<string, string>;
  const pdbs = all(objects, 'PodDisruptionBudget').filter((p) => selects((p.spec as Tree).selector, labels));
  expect(pdbs).toHaveLength(1);
  expect((pdbs[0]!.spec as Tree).maxUnavailable).toBe(1);
  const spread = podSpec(deploy).topologySpreadConstraints as Tree[];
  const byNode = spread.find((t) => t.topologyKey === 'kubernetes.io/hostname')!;
  expect(byNode.maxSkew).toBe(1);
  expect(selects(byNode.labelSelector, labels)).toBe(true);
  expect(container(deploy, 'mirror').envFrom).toContainEqual({ secretRef: { name: 'mirrorgate-s3', optional: true } });
  expect((find(objects, 'Service', 'mirrorgate-mirror').spec as Tree).sessionAffinity).toBe('ClientIP');
  expect(config.mirror.redis, 'mirror.redis: one upstream download per cold blob across replicas').toBeDefined();
  // Keys come from the environment (the SDK's chain): none in the configuration file.
  expect(config.mirror.storage.s3!.accessKeyId).toBeUndefined();
}

/** The webhook: port, probes, config file, its Service, replicas under a PodDisruptionBudget, its ServiceAccount. */
export function checkWebhook({ objects, config }: Rendering): void {
  const deploy = find(objects, 'Deployment', 'mirrorgate-webhook');
  const c = container(deploy, 'webhook');
  const port = portOf(config.webhook.listen);
  expect(c.ports).toEqual([{ name: 'https', containerPort: port, protocol: 'TCP' }]);
  expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
  expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
  expect(c.args[0]).toBe('webhook');
  expect(volumeFor(deploy, c, argAfter(c.args as string[], '--config')!).key).toBe('config.yaml');
  expect(c.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });

  const svc = find(objects, 'Service', config.webhook.serviceName);
  expect((svc.spec as Tree).ports).toMatchObject([{ port: 443, targetPort: 'https' }]);
  const podLabels = (deploy.spec as Tree).template.metadata.labels as Record<string, string>;
  expect(selects({ matchLabels: (svc.spec as Tree).selector }, podLabels)).toBe(true);

  expect((deploy.spec as Tree).replicas).toBeGreaterThanOrEqual(2);
  const pdbs = all(objects, 'PodDisruptionBudget').filter((p) => selects((p.spec as Tree).selector as Tree, podLabels));
  expect(pdbs).toHaveLength(1);
  expect((pdbs[0]!.spec as Tree).minAvailable).toBe(1);
  expect(find(objects, 'ServiceAccount', podSpec(deploy).serviceAccountName as string).metadata.name).toBe(podSpec(deploy).serviceAccountName);
}

/** The MutatingWebhookConfiguration: the Service, rules, and the safety settings (fail open, opt-in, system namespaces out). */
export function checkWebhookConfiguration({ objects, config, namespace }: Rendering): void {
  const mwc = find(objects, 'MutatingWebhookConfiguration', config.webhook.webhookConfigurationName);
  const hooks = mwc.webhooks as Tree[];
  expect(hooks).toHaveLength(1);
  const h = hooks[0]!;
  expect(h.name.split('.').length).toBeGreaterThanOrEqual(3);
  expect(h.clientConfig.service).toEqual({ name: config.webhook.serviceName, namespace, path: '/mutate', port: 443 });
  expect(h).toMatchObject({ failurePolicy: 'Ignore', sideEffects: 'None', admissionReviewVersions: ['v1'], matchPolicy: 'Equivalent', reinvocationPolicy: 'IfNeeded' });
  expect(h.timeoutSeconds).toBeLessThanOrEqual(5);
  expect(h.rules).toEqual([
    { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'], scope: 'Namespaced' },
    { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' },
  ]);

  const ns = (name: string, labels: Record<string, string> = {}): Record<string, string> => ({ 'kubernetes.io/metadata.name': name, ...labels });
  const optedIn = { [OPT_IN_LABEL]: OPT_IN_VALUE };
  expect(selects(h.namespaceSelector as Tree, ns('shop', optedIn))).toBe(true);
  expect(selects(h.namespaceSelector as Tree, ns('shop'))).toBe(false);
  expect(selects(h.namespaceSelector as Tree, ns('shop', { [OPT_IN_LABEL]: 'yes' }))).toBe(false);
  for (const system of [...SYSTEM_NAMESPACES, namespace]) expect(selects(h.namespaceSelector as Tree, ns(system, optedIn)), system).toBe(false);
  expect(selects(h.objectSelector as Tree, {})).toBe(true);
  expect(selects(h.objectSelector as Tree, { app: 'web' })).toBe(true);
  expect(selects(h.objectSelector as Tree, { [OPT_IN_LABEL]: OPT_OUT_VALUE })).toBe(false);
}

/** The webhook's RBAC is exactly what its API calls need (src/deploy/webhook-permissions.ts); the other pods get no token. */
export function checkWebhookRbac({ objects, config, namespace }: Rendering): void {
  const webhook = find(objects, 'Deployment', 'mirrorgate-webhook');
  const sa = find(objects, 'ServiceAccount', podSpec(webhook).serviceAccountName as string);
  type Grant = { group: string; resource: string; verb: string; name: string; namespace: string };
  const grants: Grant[] = [];
  for (const binding of [...all(objects, 'ClusterRoleBinding'), ...all(objects, 'RoleBinding')]) {
    const subjects = binding.subjects as Tree[];
    if (!subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa.metadata.name && s.namespace === namespace)) continue;
    const ref = binding.roleRef as Tree;
    const role = find(objects, ref.kind as string, ref.name as string);
    const scope = binding.kind === 'RoleBinding' ? binding.metadata.namespace! : '*';
    for (const rule of role.rules as Tree[])
      for (const group of rule.apiGroups as string[])
        for (const resource of rule.resources as string[])
          for (const verb of rule.verbs as string[])
            for (const name of (rule.resourceNames as string[] | undefined) ?? ['*']) grants.push({ group, resource, verb, name, namespace: scope });
  }
  const needs = WEBHOOK_API_CALLS.flatMap((c) => c.needs).map((p) => ({
    group: p.apiGroup,
    resource: p.resource,
    verb: p.verb,
    name: p.resourceNameFrom ? String(config.webhook[p.resourceNameFrom]) : '*',
    namespace: p.namespace === 'own' ? namespace : '*',
  }));
  const covers = (g: Grant, n: Grant): boolean =>
    g.group === n.group && g.resource === n.resource && g.verb === n.verb && (g.name === '*' || g.name === n.name) && (g.namespace === '*' || g.namespace === n.namespace);
  for (const n of needs) expect(grants.some((g) => covers(g, n)), `missing ${JSON.stringify(n)}`).toBe(true);
  // Nothing beyond: every grant is needed by some call, and is no wider than the widest such need.
  for (const g of grants) {
    const needed = needs.filter((n) => covers(g, n));
    expect(needed.length, `unneeded ${JSON.stringify(g)}`).toBeGreaterThan(0);
    if (g.name === '*') expect(needed.some((n) => n.name === '*'), `${JSON.stringify(g)} should name its object`).toBe(true);
    if (g.namespace === '*') expect(needed.some((n) => n.namespace === '*'), `${JSON.stringify(g)} should be namespaced`).toBe(true);
  }
  // The mirror and node-trust pods have no business with the API.
  for (const w of workloads(objects).filter((x) => x.metadata.name !== 'mirrorgate-webhook')) expect(podSpec(w).automountServiceAccountToken, w.metadata.name).toBe(false);
}

/** Every pod under a restricted security context; the node-trust DaemonSet: root, nothing more. */
export function checkSecurityContexts({ objects }: Rendering): void {
  for (const w of workloads(objects)) {
    const pod = podSpec(w).securityContext as Tree;
    expect(pod.seccompProfile, w.metadata.name).toEqual({ type: 'RuntimeDefault' });
    if (w.metadata.name === 'mirrorgate-node-trust') {
      expect(pod.runAsUser).toBe(0);
      expect(podSpec(w).hostNetwork ?? false).toBe(false);
      expect((podSpec(w).volumes as Tree[]).filter((v) => v.hostPath).map((v) => v.hostPath.path)).toEqual(['/etc/containerd/certs.d']);
    } else {
      expect(pod.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.runAsUser, w.metadata.name).toBeGreaterThanOrEqual(10000);
    }
    if (w.metadata.name === 'mirrorgate-mirror') expect(pod.fsGroup).toBe(pod.runAsGroup);
    for (const c of containers(w)) {
      const where = `${w.metadata.name}/${c.name as string}`;
      expect(c.securityContext, where).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(c.resources?.requests?.cpu, where).toBeDefined();
      expect(c.resources?.requests?.memory, where).toBeDefined();
      expect(c.resources?.limits?.memory, where).toBeDefined();
    }
  }
}

/** cert-manager: the webhook serves cert-manager's files for its Service names; cainjector fills the caBundle. */
export function checkCertManager({ objects, config, namespace }: Rendering): void {
  const mwc = find(objects, 'MutatingWebhookConfiguration', config.webhook.webhookConfigurationName);
  const [ns, certName] = mwc.metadata.annotations!['cert-manager.io/inject-ca-from']!.split('/');
  expect(ns).toBe(namespace);
  const cert = find(objects, 'Certificate', certName);
  expect([...((cert.spec as Tree).dnsNames as string[])].sort()).toEqual(serviceDnsNames(config.webhook.serviceName, namespace).filter((n) => n !== 'localhost').sort());
  const secretName = (cert.spec as Tree).secretName as string;
  expect(secretName, 'not the built-in mode Secret').not.toBe(config.webhook.tlsSecretName);
  const deploy = find(objects, 'Deployment', 'mirrorgate-webhook');
  const c = container(deploy, 'webhook');
  for (const [flag, key] of [['--tls-cert', 'tls.crt'], ['--tls-key', 'tls.key']] as const) {
    const v = volumeFor(deploy, c, argAfter(c.args as string[], flag)!);
    expect(v.volume.secret.secretName).toBe(secretName);
    expect(v.key).toBe(key);
  }
  expect(argAfter(c.args as string[], '--config')).toBe(argAfter(container(find(objects, 'Deployment', 'mirrorgate-mirror'), 'mirror').args as string[], '--config'));
  expect(find(objects, 'Issuer', (cert.spec as Tree).issuerRef.name as string)).toBeDefined();
}

/** ingress: the mirror at webhook.mirrorHost, its certificate for that name, no body limit, long timeouts. */
export function checkIngress({ objects, config }: Rendering): void {
  const ing = find(objects, 'Ingress');
  const spec = ing.spec as Tree;
  expect(spec.rules.map((r: Tree) => r.host)).toEqual([config.webhook.mirrorHost]);
  expect(spec.tls).toEqual([{ hosts: [config.webhook.mirrorHost], secretName: 'mirrorgate-mirror-tls' }]);
  expect(spec.rules[0].http.paths[0]).toMatchObject({ path: '/v2', pathType: 'Prefix', backend: { service: { name: 'mirrorgate-mirror', port: { name: 'http' } } } });
  const a = ing.metadata.annotations!;
  expect(a['nginx.ingress.kubernetes.io/proxy-body-size']).toBe('0');
  expect(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(600);
  expect(a['nginx.ingress.kubernetes.io/proxy-request-buffering']).toBe('off');
  const mirrorCert = all(objects, 'Certificate').find((c) => (c.spec as Tree).secretName === 'mirrorgate-mirror-tls')!;
  expect((mirrorCert.spec as Tree).dnsNames).toEqual([config.webhook.mirrorHost]);
}

/**
 * node-trust: the DaemonSet runs the product's hosts-toml on the rendered configuration into the node directory, CA
 * from the mirror certificate; what it writes is checked by running the command on that configuration. A rendered
 * Namespace must allow the DaemonSet's root pod.
 */
export async function checkNodeTrust({ objects, config, namespace }: Rendering): Promise<void> {
  const ds = find(objects, 'DaemonSet', 'mirrorgate-node-trust');
  const init = container(ds, 'install');
  const args = init.args as string[];
  expect(args[0]).toBe('hosts-toml');
  expect(volumeFor(ds, init, argAfter(args, '--config')!).key).toBe('config.yaml');
  const ca = volumeFor(ds, init, argAfter(args, '--install-ca')!);
  expect(ca.volume.secret.secretName).toBe('mirrorgate-mirror-tls');
  expect(ca.key).toBe('ca.crt');
  const out = argAfter(args, '--out')!;
  const outMount = (init.volumeMounts as Tree[]).find((m) => m.mountPath === out)!;
  expect((podSpec(ds).volumes as Tree[]).find((v) => v.name === outMount.name)!.hostPath.path).toBe('/etc/containerd/certs.d');
  // The refresh container runs the same command again.
  expect(container(ds, 'refresh').args).toEqual(args);

  // What lands on a node: run the product's command on the rendered configuration, into a stand-in certs.d.
  const dir = await makeTempDir('mirrorgate-node-trust-');
  try {
    const cm = all(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('mirrorgate-config'))!;
    writeFileSync(path.join(dir.path, 'config.yaml'), (cm.data as Record<string, string>)['config.yaml']!);
    writeFileSync(path.join(dir.path, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const certsD = path.join(dir.path, 'certs.d');
    await runHostsToml({ config: path.join(dir.path, 'config.yaml'), installCa: path.join(dir.path, 'ca.crt'), out: certsD }, { stdout: () => undefined, stderr: () => undefined }, {});
    const host = config.webhook.mirrorHost;
    expect(readFileSync(path.join(certsD, host, 'ca.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');
    for (const upstream of Object.keys(config.upstreams)) {
      expect(readFileSync(path.join(certsD, upstream, 'hosts.toml'), 'utf8')).toBe(
        `server = "${config.upstreams[upstream]!.url}"\n\n[host."https://${host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/containerd/certs.d/${host}/ca.crt"\n`,
      );
    }
  } finally {
    await dir.cleanup();
  }
  const ns = all(objects, 'Namespace').find((n) => n.metadata.name === namespace);
  if (ns) expect(ns.metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('privileged');
  // Node-level mirroring sends no credentials.
  expect(config.mirror.auth.anonymousRead).toBe(true);
}

/** The webhook probes the mirror through its Service. */
export function checkMirrorProbe({ config, namespace }: Rendering): void {
  expect(config.webhook.mirrorProbe.url).toBe(`http://mirrorgate-mirror.${namespace}.svc:${portOf(config.mirror.listen)}/v2/`);
}

/**
 * monitoring: one ServiceMonitor per half, each selecting exactly its Service by labels and scraping its port's
 * /metrics with the fixed job label the alerts select on; the webhook over HTTPS, verified with the CA of its serving
 * certificate's Secret; the alerting rules and the Grafana dashboard beside them.
 */
export function checkMonitoring({ objects, config, namespace }: Rendering): void {
  expect(all(objects, 'ServiceMonitor').map((m) => m.metadata.name).sort()).toEqual(['mirrorgate-mirror', 'mirrorgate-webhook']);
  const targets = [
    { monitor: 'mirrorgate-mirror', service: 'mirrorgate-mirror', port: 'http', scheme: config.mirror.tls ? 'https' : 'http' },
    { monitor: 'mirrorgate-webhook', service: config.webhook.serviceName, port: 'https', scheme: 'https' },
  ];
  for (const t of targets) {
    const spec = find(objects, 'ServiceMonitor', t.monitor).spec as Tree;
    const svc = find(objects, 'Service', t.service);
    for (const s of all(objects, 'Service')) expect(selects(spec.selector as Tree, s.metadata.labels ?? {}), `${t.monitor} selects ${s.metadata.name}`).toBe(s === svc);
    expect(spec.endpoints).toHaveLength(1);
    const ep = spec.endpoints[0] as Tree;
    expect(((svc.spec as Tree).ports as Tree[]).map((p) => p.name)).toContain(ep.port);
    expect(ep).toMatchObject({ port: t.port, path: '/metrics', scheme: t.scheme });
    expect(ep.relabelings).toEqual([{ action: 'replace', targetLabel: 'job', replacement: t.monitor }]);
  }
  const webhookTls = ((find(objects, 'ServiceMonitor', 'mirrorgate-webhook').spec as Tree).endpoints[0] as Tree).tlsConfig as Tree;
  const served = all(objects, 'Certificate').find((c) => (((c.spec as Tree).dnsNames as string[] | undefined) ?? []).includes(`${config.webhook.serviceName}.${namespace}.svc`));
  expect(webhookTls.ca).toEqual({ secret: { name: served ? (served.spec as Tree).secretName : config.webhook.tlsSecretName, key: 'ca.crt' } });
  expect(serviceDnsNames(config.webhook.serviceName, namespace)).toContain(webhookTls.serverName);

  expect(((find(objects, 'PrometheusRule').spec as Tree).groups as Tree[]).length).toBeGreaterThan(0);
  const dashboard = find(objects, 'ConfigMap', 'mirrorgate-grafana-dashboard');
  expect(dashboard.metadata.labels!.grafana_dashboard).toBe('1');
  expect((JSON.parse((dashboard.data as Record<string, string>)['mirrorgate.json']!) as Tree).title).toBe('mirrorgate');
}
