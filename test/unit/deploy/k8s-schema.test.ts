import { describe, expect, it } from 'vitest';
import { modelNameFor, validateObject } from '../../helpers/deploy/k8s-schema.js';

const deployment = (container: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'x', labels: { a: 'b' } },
  spec: { replicas: 1, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ...container }], ...extra } } },
});

describe('the manifest schema check', () => {
  it('maps kinds to the Kubernetes model types', () => {
    expect(modelNameFor('apps/v1', 'Deployment')).toBe('V1Deployment');
    expect(modelNameFor('v1', 'Service')).toBe('V1Service');
    expect(modelNameFor('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration')).toBe('V1MutatingWebhookConfiguration');
  });

  it('accepts a valid object, int-or-string ports and quantities', () => {
    expect(validateObject(deployment({ ports: [{ name: 'http', containerPort: 80 }], livenessProbe: { httpGet: { path: '/', port: 'http' } }, resources: { limits: { memory: '1Gi' } } }))).toEqual([]);
  });

  it('finds misspelt and misplaced fields at any depth, and wrong value types', () => {
    expect(validateObject(deployment({ securityContext: { runAsNonroot: true } }))).toEqual(['Deployment.spec.template.spec.containers[0].securityContext.runAsNonroot: no such field in V1SecurityContext']);
    expect(validateObject(deployment({}, { fsGroup: 10001 }))).toEqual(['Deployment.spec.template.spec.fsGroup: no such field in V1PodSpec']);
    expect(validateObject(deployment({ ports: [{ containerPort: '80' }] }))).toEqual(['Deployment.spec.template.spec.containers[0].ports[0].containerPort: expected a number, got "80"']);
    expect(validateObject(deployment({ args: 'mirror' }))).toEqual(['Deployment.spec.template.spec.containers[0].args: expected a list']);
    expect(validateObject({ apiVersion: 'v1', kind: 'Sekret', metadata: { name: 'x' } })).toEqual(['v1 Sekret: no Kubernetes model V1Sekret']);
  });
});
