import * as k8s from '@kubernetes/client-node';

/**
 * Validates rendered objects against the Kubernetes API types that @kubernetes/client-node ships (its models are
 * generated from the Kubernetes OpenAPI spec): every field must exist in the type at its path, and every value must
 * have the field's type (string, number, boolean, array, map, nested object). Catches misspelt or misplaced fields
 * and wrong value types; it does not know which fields are required.
 */

interface Attribute {
  baseName: string;
  type: string;
}
type ModelClass = { getAttributeTypeMap(): Attribute[] };

const models = k8s as unknown as Record<string, ModelClass | undefined>;

/** The model class for a kind: `apps/v1 Deployment` -> V1Deployment, `policy/v1 PodDisruptionBudget` -> V1PodDisruptionBudget. */
export function modelNameFor(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop() ?? '';
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

function check(value: unknown, type: string, path: string, problems: string[]): void {
  if (value === null || value === undefined) return;
  if (type === 'any') return;
  if (type === 'string' || type === 'Date') {
    if (typeof value !== 'string') problems.push(`${path}: expected a string, got ${JSON.stringify(value)}`);
    return;
  }
  if (type === 'number') {
    if (typeof value !== 'number') problems.push(`${path}: expected a number, got ${JSON.stringify(value)}`);
    return;
  }
  if (type === 'boolean') {
    if (typeof value !== 'boolean') problems.push(`${path}: expected a boolean, got ${JSON.stringify(value)}`);
    return;
  }
  if (type === 'IntOrString') {
    if (typeof value !== 'number' && typeof value !== 'string') problems.push(`${path}: expected an int or a string`);
    return;
  }
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return void problems.push(`${path}: expected a list`);
    value.forEach((v, i) => check(v, array[1]!, `${path}[${i}]`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) return void problems.push(`${path}: expected a map`);
    for (const [k, v] of Object.entries(value)) check(v, map[1]!, `${path}.${k}`, problems);
    return;
  }
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== 'function') return void problems.push(`${path}: unknown type ${type}`);
  if (typeof value !== 'object' || Array.isArray(value)) return void problems.push(`${path}: expected an object (${type})`);
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attributes.get(k);
    if (t === undefined) problems.push(`${path}.${k}: no such field in ${type}`);
    else check(v, t, `${path}.${k}`, problems);
  }
}

/** Problems found in one object; an empty list means it validates. A kind the models do not know is a problem. */
export function validateObject(obj: { apiVersion?: unknown; kind?: unknown; [field: string]: unknown }): string[] {
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return ['apiVersion and kind must be strings'];
  const type = modelNameFor(obj.apiVersion, obj.kind);
  if (!models[type]) return [`${obj.apiVersion} ${obj.kind}: no Kubernetes model ${type}`];
  const problems: string[] = [];
  check(obj, type, obj.kind, problems);
  return problems;
}
