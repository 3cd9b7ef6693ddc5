import type { Readable } from 'node:stream';

/** What a request to an upstream is for: decides which redirects are followed and labels metrics. */
export type UpstreamKind = 'manifest' | 'blob' | 'tags' | 'referrers' | 'token' | 'base';

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  /** Path below the upstream's URL, starting with `/v2/`. */
  path: string;
  /** Repository path, for the token scope. */
  repository?: string;
  kind: UpstreamKind;
  headers?: Record<string, string>;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Consume or destroy it. HEAD responses have an empty body. */
  body: Readable;
  /** URL that finally answered (after redirects). */
  url: string;
}

export function header(headers: UpstreamResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The body size an upstream announced, when it announced a valid one: digits only (no sign, exponent,
 * spaces or empty value, which `Number()` would take), at most 15 of them so it stays a safe integer.
 */
export function contentLength(res: Pick<UpstreamResponse, 'headers'>): number | undefined {
  const length = header(res.headers, 'content-length');
  return length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
}

/** Drops a body we will not read (closing its connection); undici reports that as an error we expect. */
export function release(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Drains a body we do not need so its connection goes back to the pool. */
export async function discard(body: Readable): Promise<void> {
  try {
    body.resume();
    await new Promise<void>((resolve) => {
      body.once('end', resolve).once('error', () => resolve()).once('close', resolve);
    });
  } catch {
    /* nothing to do: the connection is dropped */
  }
}
