import type { WebhookConfig } from '../config/schema.js';

/**
 * Every Kubernetes API call the webhook's controllers make (src/webhook), and the RBAC permission each needs.
 * The manifests' RBAC is checked against this table, and this table against the calls in the code
 * (test/unit/deploy/manifests.test.ts), so a new API call without a permission fails the tests.
 */
export interface Permission {
  apiGroup: string;
  resource: string;
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** `own`: only in the webhook's namespace; `any`: any namespace (or a cluster-scoped resource). */
  namespace: 'own' | 'any';
  /** When the call names one object: the configuration field holding its name (RBAC `resourceNames`). */
  resourceNameFrom?: keyof WebhookConfig;
}

export interface ApiCall {
  /** Source file under src/webhook. */
  file: string;
  /** `<client>.<method>` as called (`this.core.readNamespacedSecret`), or `watch <path>` for a ListWatch. */
  call: string;
  why: string;
  needs: Permission[];
}

const secret = (verb: Permission['verb'], namespace: Permission['namespace']): Permission => ({ apiGroup: '', resource: 'secrets', verb, namespace });
const listWatch = (resource: string, namespace: Permission['namespace']): Permission[] => [
  { apiGroup: '', resource, verb: 'list', namespace },
  { apiGroup: '', resource, verb: 'watch', namespace },
];
const MWC = { apiGroup: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', namespace: 'any', resourceNameFrom: 'webhookConfigurationName' } as const;

export const WEBHOOK_API_CALLS: readonly ApiCall[] = [
  { file: 'cert-secret.ts', call: 'core.readNamespacedSecret', why: 'read the generated TLS Secret', needs: [secret('get', 'own')] },
  { file: 'cert-secret.ts', call: 'core.createNamespacedSecret', why: 'create the TLS Secret (the first replica)', needs: [secret('create', 'own')] },
  { file: 'cert-secret.ts', call: 'core.replaceNamespacedSecret', why: 'renew the TLS Secret', needs: [secret('update', 'own')] },
  { file: 'cert-secret.ts', call: 'admission.readMutatingWebhookConfiguration', why: 'compare the caBundle', needs: [{ ...MWC, verb: 'get' }] },
  { file: 'cert-secret.ts', call: 'admission.patchMutatingWebhookConfiguration', why: 'set the caBundle', needs: [{ ...MWC, verb: 'patch' }] },
  { file: 'pull-secret-sync.ts', call: 'watch /api/v1/namespaces', why: 'which namespaces opt in', needs: listWatch('namespaces', 'any') },
  { file: 'pull-secret-sync.ts', call: 'watch /api/v1/namespaces/${namespace}/secrets', why: 'the pull secret source', needs: listWatch('secrets', 'own') },
  { file: 'pull-secret-sync.ts', call: 'watch /api/v1/secrets', why: 'the copies, by label, in every namespace', needs: listWatch('secrets', 'any') },
  { file: 'pull-secret-sync.ts', call: 'core.listNamespace', why: 'the namespaces informer list', needs: listWatch('namespaces', 'any').slice(0, 1) },
  { file: 'pull-secret-sync.ts', call: 'core.listNamespacedSecret', why: 'the source informer list', needs: [secret('list', 'own')] },
  { file: 'pull-secret-sync.ts', call: 'core.listSecretForAllNamespaces', why: 'the copies informer list', needs: [secret('list', 'any')] },
  { file: 'pull-secret-sync.ts', call: 'core.createNamespacedSecret', why: 'create a copy in an opted-in namespace', needs: [secret('create', 'any')] },
  { file: 'pull-secret-sync.ts', call: 'core.replaceNamespacedSecret', why: 'update a copy after the source rotated', needs: [secret('update', 'any')] },
  { file: 'pull-secret-sync.ts', call: 'core.deleteNamespacedSecret', why: 'remove a copy when a namespace opts out (or its type changed)', needs: [secret('delete', 'any')] },
  { file: 'pull-secret-sync.ts', call: 'core.readNamespacedSecret', why: 'after a 409: is the existing Secret ours?', needs: [secret('get', 'any')] },
];
