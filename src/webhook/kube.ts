import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

/** Detection of a Kubernetes API to talk to: in-cluster service account, or the KUBECONFIG variable. */

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): { kc: KubeConfig; source: string } | undefined {
  if (env.KUBERNETES_SERVICE_HOST && existsSync(`${SA_DIR}/token`)) {
    const kc = new KubeConfig();
    kc.loadFromCluster();
    return { kc, source: 'in-cluster service account' };
  }
  if (env.KUBECONFIG) {
    const kc = new KubeConfig();
    // KUBECONFIG may list several files; client-node merges them like kubectl.
    kc.loadFromDefault();
    if (!kc.getCurrentCluster()) return undefined;
    return { kc, source: `KUBECONFIG ${env.KUBECONFIG}` };
  }
  return undefined;
}

/** The namespace the webhook runs in: configured, POD_NAMESPACE (downward API), the service account's, or "mirrorgate". */
export function ownNamespace(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (configured) return configured;
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    return readFileSync(`${SA_DIR}/namespace`, 'utf8').trim() || 'mirrorgate';
  } catch {
    return 'mirrorgate';
  }
}

/** The HTTP status of a client-node error (ApiException has `code`, a failed watch has `statusCode`). */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}
