import { readFileSync } from 'node:fs';
import type { UpstreamConfig } from '../../config/schema.js';

type SecretSource = NonNullable<UpstreamConfig['credentials']>['username'];

/** Reads one secret from where the config says it is. Read on each use so rotated files are picked up. */
export function readSecret(source: SecretSource, env: NodeJS.ProcessEnv): string {
  if (source.value !== undefined) return source.value;
  if (source.file !== undefined) return readFileSync(source.file, 'utf8').trim();
  const v = env[source.env ?? ''];
  if (v === undefined) throw new Error(`environment variable ${source.env} is not set`);
  return v;
}

export function basicAuthHeader(credentials: UpstreamConfig['credentials'], env: NodeJS.ProcessEnv): string | undefined {
  if (!credentials) return undefined;
  const user = readSecret(credentials.username, env);
  const pass = readSecret(credentials.password, env);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}
