import type { Config } from '../../../src/config/schema.js';
import { podSpec, type Tree } from './checks.js';
import type { K8sObject } from './kustomize.js';

/**
 * What two renderings of the deployment (the chart's, the manifests') must agree on, object by object, keyed by kind
 * and name: pod specs, selectors and pod labels, Service specs, RBAC, the webhook registration, the configuration as
 * the product loads it, Secret contents, and the specs of everything else. Left out: what only bookkeeping differs
 * in (Helm's labels, checksum annotations, kustomize's ConfigMap hash suffix).
 */
export function essentials(objects: K8sObject[], config: Config): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const unhash = (name: string): string => name.replace(/^(mirrorgate-config)-[a-z0-9]{10}$/, '$1');
  const role = (o: K8sObject): Tree => ({ name: o.metadata.labels?.['app.kubernetes.io/name'], component: o.metadata.labels?.['app.kubernetes.io/component'] });
  for (const o of objects) {
    const key = `${o.kind} ${unhash(o.metadata.name)}`;
    const spec = o.spec as Tree;
    switch (o.kind) {
      case 'Deployment':
      case 'DaemonSet': {
        const pod = structuredClone(podSpec(o));
        const byName = (a: Tree, b: Tree): number => (a.name as string).localeCompare(b.name as string);
        // Volumes and mounts are sets: kustomize's patches put theirs first, the chart in reading order.
        for (const v of (pod.volumes as Tree[]) ?? []) if (v.configMap) v.configMap.name = unhash(v.configMap.name as string);
        (pod.volumes as Tree[] | undefined)?.sort(byName);
        for (const c of [...((pod.initContainers as Tree[] | undefined) ?? []), ...(pod.containers as Tree[])]) (c.volumeMounts as Tree[] | undefined)?.sort(byName);
        out.set(key, { replicas: spec.replicas, strategy: spec.strategy, updateStrategy: spec.updateStrategy, selector: spec.selector, labels: spec.template.metadata.labels, pod });
        break;
      }
      case 'ConfigMap':
        out.set(key, o.metadata.name.startsWith('mirrorgate-config') ? config : { labels: { grafana_dashboard: o.metadata.labels?.grafana_dashboard }, data: o.data });
        break;
      case 'Secret':
        out.set(key, Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
        break;
      case 'Namespace':
        out.set(key, Object.fromEntries(Object.entries(o.metadata.labels ?? {}).filter(([k]) => k.startsWith('pod-security.kubernetes.io/'))));
        break;
      case 'ClusterRole':
        out.set(key, o.rules);
        break;
      case 'ClusterRoleBinding':
        out.set(key, { roleRef: o.roleRef, subjects: o.subjects });
        break;
      case 'MutatingWebhookConfiguration':
        out.set(key, { annotations: o.metadata.annotations ?? {}, webhooks: o.webhooks });
        break;
      case 'ServiceAccount':
        out.set(key, role(o));
        break;
      case 'Ingress':
        out.set(key, { annotations: o.metadata.annotations, spec });
        break;
      case 'Service':
        out.set(key, { ...role(o), spec });
        break;
      default:
        out.set(key, spec);
    }
  }
  return out;
}
