import * as k8s from '@kubernetes/client-node';

/**
 * Validates rendered objects the way the API server will:
 *
 * 1. Schema: each object goes through its model's `validate()` from `kubernetes-models` (the Kubernetes OpenAPI
 *    schemas), `@kubernetes-models/cert-manager` (cert-manager's CRD schemas) or
 *    `@kubernetes-models/prometheus-operator` (the Prometheus Operator's: ServiceMonitor, PrometheusRule): value
 *    types, required fields, enums, formats. An object whose apiVersion and kind have no model is a problem, never
 *    a silent pass.
 * 2. Unknown fields: those schemas do not forbid properties they do not list (no `additionalProperties: false`),
 *    so a misspelt or misplaced field passes `validate()`; the API server rejects it (kubectl's default strict
 *    field validation). For built-in kinds the field names come from the API types @kubernetes/client-node ships
 *    (also generated from the OpenAPI spec); neither CRD package exposes its field names at run time, so for
 *    their kinds only the top-level `spec` fields are checked, against the short list below.
 */

export interface ObjectLike {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown };
  [field: string]: unknown;
}

interface ModelInstance {
  validate(): void;
}
interface ModelClass {
  new (data: object): ModelInstance;
  apiVersion: string;
  kind: string;
}

/** The packages holding the models of custom resources, by API group (and its subgroups). */
const CRD_PACKAGES: Record<string, string> = {
  'cert-manager.io': '@kubernetes-models/cert-manager',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/** The package of a custom resource's models, or undefined for a built-in apiVersion. */
function crdPackageFor(apiVersion: string): string | undefined {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const owner = Object.keys(CRD_PACKAGES).find((g) => group === g || group.endsWith(`.${g}`));
  return owner === undefined ? undefined : CRD_PACKAGES[owner];
}

/** The npm module that holds an apiVersion's models: `apps/v1` -> `kubernetes-models/apps/v1`. */
export function modelModuleFor(apiVersion: string): string {
  return `${crdPackageFor(apiVersion) ?? 'kubernetes-models'}/${apiVersion}`;
}

/** The model class for an apiVersion and kind, or why there is none. */
export async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | string> {
  let exports: Record<string, unknown>;
  try {
    exports = (await import(modelModuleFor(apiVersion))) as Record<string, unknown>;
  } catch {
    return `no models for apiVersion ${apiVersion}`;
  }
  const model = exports[kind];
  if (typeof model !== 'function') return `no model for ${apiVersion} ${kind}`;
  const { kind: modelKind, apiVersion: modelApiVersion, prototype } = model as Partial<ModelClass> & { prototype: object };
  if (modelKind !== kind || modelApiVersion !== apiVersion) return `no model for ${apiVersion} ${kind}`;
  // Model.prototype.validate is a no-op; a generated class installs its schema's validator on its own prototype.
  if (!Object.hasOwn(prototype, 'validate')) return `the model for ${apiVersion} ${kind} has no schema validator`;
  return model as ModelClass;
}

/** The errors of a failed `validate()`: ajv's error objects (`instancePath`, `message`) when it has them. */
function schemaErrors(err: unknown): string[] {
  const list = (err as { errors?: unknown }).errors;
  if (Array.isArray(list) && list.length > 0) {
    return list.map((e: { instancePath?: string; message?: string; params?: { allowedValues?: unknown } }) => {
      const allowed = Array.isArray(e.params?.allowedValues) ? ` (${e.params.allowedValues.join(', ')})` : '';
      return `${e.instancePath || '/'} ${e.message ?? JSON.stringify(e.params)}${allowed}`;
    });
  }
  return [err instanceof Error ? err.message : String(err)];
}

// ---- unknown fields ----------------------------------------------------------------------------------------

interface Attribute {
  baseName: string;
  type: string;
}
type ApiType = { getAttributeTypeMap(): Attribute[] };
const apiTypes = k8s as unknown as Record<string, ApiType | undefined>;

/**
 * Spec fields of custom resources these manifests may use (subsets of cert-manager.io/v1 and monitoring.coreos.com/v1):
 * extend when a manifest needs more.
 */
const CRD_SPEC_FIELDS: Record<string, string[]> = {
  Issuer: ['selfSigned', 'ca'],
  Certificate: ['isCA', 'commonName', 'secretName', 'duration', 'renewBefore', 'dnsNames', 'privateKey', 'issuerRef'],
  ServiceMonitor: ['selector', 'namespaceSelector', 'endpoints', 'jobLabel'],
  PrometheusRule: ['groups'],
};

/** The @kubernetes/client-node type of a kind: `apps/v1 Deployment` -> V1Deployment. */
export function apiTypeNameFor(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop() ?? '';
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

function walk(value: unknown, type: string, path: string, problems: string[]): void {
  if (value === null || typeof value !== 'object') return; // scalars: the schema checks their types
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, array[1]!, `${path}/${i}`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value)) walk(v, map[1]!, `${path}/${k}`, problems);
    return;
  }
  const apiType = apiTypes[type];
  if (!apiType || typeof apiType.getAttributeTypeMap !== 'function' || Array.isArray(value)) return; // any, IntOrString, Date, ...
  const attributes = new Map(apiType.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attributes.get(k);
    if (t === undefined) problems.push(`${path}/${k} is not a field of ${type}`);
    else walk(v, t, `${path}/${k}`, problems);
  }
}

/** Fields the API does not define, as `/json/pointer is not a field of Type`. */
export function unknownFields(obj: ObjectLike & { apiVersion: string; kind: string }): string[] {
  const problems: string[] = [];
  if (crdPackageFor(obj.apiVersion) !== undefined) {
    const fields = CRD_SPEC_FIELDS[obj.kind];
    if (!fields) return [`no list of spec fields for ${obj.apiVersion} ${obj.kind}`];
    for (const k of Object.keys((obj.spec as object | undefined) ?? {})) if (!fields.includes(k)) problems.push(`/spec/${k} is not a field of ${obj.kind}.spec`);
    return problems;
  }
  const type = apiTypeNameFor(obj.apiVersion, obj.kind);
  if (!apiTypes[type]) return [`no API type ${type} to check field names against`];
  walk(obj, type, '', problems);
  return problems;
}

/**
 * `kubectl kustomize` wraps generated base64 at 70 columns in a literal block; the API server's decoder (Go's
 * encoding/base64) skips line breaks, the schemas' `byte` format does not. Join the lines, as the server reads them.
 */
function joinBase64Lines(obj: ObjectLike): ObjectLike {
  const field = obj.kind === 'Secret' ? 'data' : obj.kind === 'ConfigMap' ? 'binaryData' : undefined;
  const values = field === undefined ? undefined : obj[field];
  if (obj.apiVersion !== 'v1' || field === undefined || values === null || typeof values !== 'object') return obj;
  const joined = Object.entries(values).map(([k, v]) => [k, typeof v === 'string' ? v.replace(/[\r\n]/g, '') : v]);
  return { ...obj, [field]: Object.fromEntries(joined) };
}

// ---- both ------------------------------------------------------------------------------------------------------

/** Problems found in one object, each naming it (`Deployment web: /spec/replicas must be integer`); none means it validates. */
export async function validateObject(obj: ObjectLike): Promise<string[]> {
  const name = typeof obj.metadata?.name === 'string' ? obj.metadata.name : '(no name)';
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return [`${name}: apiVersion and kind must be strings`];
  const { apiVersion, kind } = obj;
  const where = `${kind} ${name}`;
  const model = await modelFor(apiVersion, kind);
  if (typeof model === 'string') return [`${where}: ${model}`];
  const problems: string[] = [];
  try {
    new model(joinBase64Lines(obj)).validate();
  } catch (err) {
    problems.push(...schemaErrors(err));
  }
  problems.push(...unknownFields({ ...obj, apiVersion, kind }));
  return problems.map((p) => `${where}: ${p}`);
}

/** Problems in every object, in order. */
export async function validateObjects(objects: ObjectLike[]): Promise<string[]> {
  return (await Promise.all(objects.map(validateObject))).flat();
}
