import { describe, expect, it } from 'vitest';
import { apiTypeNameFor, modelFor, modelModuleFor, validateObject, validateObjects } from '../../helpers/deploy/k8s-schema.js';

type Obj = Record<string, unknown>;

const deployment = (container: Obj = {}, podSpec: Obj = {}, spec: Obj = {}): Obj => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', labels: { a: 'b' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { a: 'b' } },
    template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ...container }], ...podSpec } },
    ...spec,
  },
});

const certificate = (spec: Obj): Obj => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name: 'tls' },
  spec: { secretName: 'tls', dnsNames: ['a.example'], issuerRef: { name: 'ca', kind: 'Issuer' }, ...spec },
});

describe('the manifest schema check', () => {
  it('finds the model of each kind in kubernetes-models, @kubernetes-models/cert-manager or @kubernetes-models/prometheus-operator', async () => {
    expect(modelModuleFor('v1')).toBe('kubernetes-models/v1');
    expect(modelModuleFor('apps/v1')).toBe('kubernetes-models/apps/v1');
    expect(modelModuleFor('cert-manager.io/v1')).toBe('@kubernetes-models/cert-manager/cert-manager.io/v1');
    expect(modelModuleFor('acme.cert-manager.io/v1')).toBe('@kubernetes-models/cert-manager/acme.cert-manager.io/v1');
    expect(modelModuleFor('monitoring.coreos.com/v1')).toBe('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1');
    for (const [apiVersion, kind] of [
      ['v1', 'Secret'],
      ['apps/v1', 'DaemonSet'],
      ['policy/v1', 'PodDisruptionBudget'],
      ['admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'],
      ['networking.k8s.io/v1', 'Ingress'],
      ['cert-manager.io/v1', 'Issuer'],
      ['monitoring.coreos.com/v1', 'ServiceMonitor'],
      ['monitoring.coreos.com/v1', 'PrometheusRule'],
    ] as const) {
      const model = await modelFor(apiVersion, kind);
      expect(typeof model, `${apiVersion} ${kind}`).toBe('function');
    }
    expect(apiTypeNameFor('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration')).toBe('V1MutatingWebhookConfiguration');
  });

  it('accepts valid objects: int-or-string ports, quantities, cert-manager resources', async () => {
    const ok = deployment({ ports: [{ name: 'http', containerPort: 80 }], livenessProbe: { httpGet: { path: '/', port: 'http' } }, resources: { limits: { memory: '1Gi' } } });
    expect(await validateObjects([ok, certificate({ duration: '2160h', privateKey: { algorithm: 'ECDSA', size: 256 } })])).toEqual([]);
  });

  it('rejects a broken Deployment: a wrong value type and an unknown field, each named with its object and path', async () => {
    const broken = deployment({}, {}, { replicas: '3', replica: 3 });
    expect(await validateObject(broken)).toEqual(['Deployment web: /spec/replicas must be integer', 'Deployment web: /spec/replica is not a field of V1DeploymentSpec']);
  });

  it('finds wrong types, missing required fields and bad enum values at any depth', async () => {
    expect(await validateObject(deployment({ ports: [{ containerPort: '80' }] }))).toEqual(['Deployment web: /spec/template/spec/containers/0/ports/0/containerPort must be integer']);
    expect(await validateObject(deployment({ args: 'mirror' }))).toEqual(['Deployment web: /spec/template/spec/containers/0/args must be array']);
    const { spec } = deployment() as { spec: Obj };
    expect(await validateObject({ ...deployment(), spec: { ...spec, selector: undefined } })).toEqual(['Deployment web: /spec must have required property selector']);
    expect(await validateObject(certificate({ secretName: 5 }))).toEqual(['Certificate tls: /spec/secretName must be string']);
    expect(await validateObject(deployment({ imagePullPolicy: 'Sometimes' }))).toEqual([
      'Deployment web: /spec/template/spec/containers/0/imagePullPolicy must be equal to one of the allowed values (Always, IfNotPresent, Never)',
    ]);
    expect(await validateObject(certificate({ privateKey: { algorithm: 'DSA' } }))).toEqual(['Certificate tls: /spec/privateKey/algorithm must be equal to one of the allowed values (RSA, ECDSA, Ed25519)']);
  });

  it('finds misspelt and misplaced fields at any depth', async () => {
    expect(await validateObject(deployment({ securityContext: { runAsNonroot: true } }))).toEqual([
      'Deployment web: /spec/template/spec/containers/0/securityContext/runAsNonroot is not a field of V1SecurityContext',
    ]);
    expect(await validateObject(deployment({}, { fsGroup: 10001 }))).toEqual(['Deployment web: /spec/template/spec/fsGroup is not a field of V1PodSpec']);
    expect(await validateObject(certificate({ dnsName: ['a.example'] }))).toEqual(['Certificate tls: /spec/dnsName is not a field of Certificate.spec']);
  });

  it('checks Prometheus Operator resources: value types, and spec fields by name', async () => {
    const monitor = (spec: Obj): Obj => ({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'm' }, spec: { selector: {}, ...spec } });
    expect(await validateObject(monitor({ endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }] }))).toEqual([]);
    expect(await validateObject(monitor({ endpoints: [{ port: 5000 }] }))).toEqual(['ServiceMonitor m: /spec/endpoints/0/port must be string']);
    expect(await validateObject(monitor({ endpoints: [], endpoint: [] }))).toEqual(['ServiceMonitor m: /spec/endpoint is not a field of ServiceMonitor.spec']);
    const rule = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'r' }, spec: { groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'up == 0' }] }] } };
    expect(await validateObject(rule)).toEqual([]);
    expect(await validateObject({ ...rule, spec: { groups: [{ rules: [] }] } })).toEqual(['PrometheusRule r: /spec/groups/0 must have required property name']);
  });

  it('reads Secret data as the API server does: base64 wrapped over lines is fine, anything else is not', async () => {
    const secret = (data: string): Obj => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { f: data } });
    const wrapped = Buffer.from('x'.repeat(100)).toString('base64').replace(/.{70}/g, '$&\n');
    expect(await validateObject(secret(`${wrapped}\n`))).toEqual([]);
    expect(await validateObject(secret('not base64!'))).toEqual(['Secret s: /data/f must match format "byte"']);
  });

  it('reports a kind no package knows instead of passing it', async () => {
    expect(await validateObject({ apiVersion: 'v1', kind: 'Sekret', metadata: { name: 'x' } })).toEqual(['Sekret x: no model for v1 Sekret']);
    expect(await validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(['Widget w: no models for apiVersion example.com/v1']);
  });
});
