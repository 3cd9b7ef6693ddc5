import { stringify } from 'yaml';
import { REGISTRY_HOST_RE } from '../config/schema.js';

/**
 * The pull secret source: a `kubernetes.io/dockerconfigjson` Secret with credentials for the mirror host. The
 * webhook finds it by name (`webhook.pullSecretSourceName` in `webhook.namespace`) and copies it into every
 * opted-in namespace; kubelets then send these credentials to the mirror.
 */
export interface PullSecretSpec {
  server: string;
  username: string;
  password: string;
  name: string;
  namespace: string;
}

/** Labels on the source, for people and `kubectl get -l`; the webhook itself selects the source by name. */
export const PULL_SECRET_SOURCE_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'mirrorgate',
  'app.kubernetes.io/component': 'pull-secret-source',
};

export function dockerConfigJson(server: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  return JSON.stringify({ auths: { [server]: { username, password, auth } } });
}

export function pullSecretManifest(spec: PullSecretSpec): Record<string, unknown> {
  if (!REGISTRY_HOST_RE.test(spec.server)) throw new Error(`--server ${JSON.stringify(spec.server)} is not a registry host (e.g. registry.example.com or registry.example.com:5000, no scheme)`);
  if (spec.username === '' || spec.username.includes(':')) throw new Error('the user name must be non-empty and without ":"');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: spec.name, namespace: spec.namespace, labels: { ...PULL_SECRET_SOURCE_LABELS } },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(dockerConfigJson(spec.server, spec.username, spec.password)).toString('base64') },
  };
}

export function pullSecretYaml(spec: PullSecretSpec): string {
  return stringify(pullSecretManifest(spec));
}
