import { startNginxServer, type NginxServer } from './nginx.js';

export type AccelFront = NginxServer;

export interface AccelFrontOptions {
  /** The mirror's `http://host:port`. */
  mirror: string;
  /** The mirror's `storage.path`: the internal location serves `<storagePath>/blobs/`. */
  storagePath: string;
  /** The mirror's `storage.accelRedirect.prefix`. */
  prefix: string;
  workers?: number;
}

/**
 * The `server` block of docs/deploy.md's nginx front (the same directives): everything goes to the mirror,
 * which authenticates and scopes each request; a blob it names with `X-Accel-Redirect` is sent by nginx
 * from an `internal` location on the storage's blob directory, which clients cannot request themselves.
 */
export function accelServerBlock(o: { listen: string; mirror: string; storagePath: string; prefix: string }): string {
  return [
    'upstream mirrorgate { server ' + o.mirror.replace(/^https?:\/\//, '') + '; keepalive 32; }',
    'server {',
    `  listen ${o.listen};`,
    '  client_max_body_size 0;',
    '  location / {',
    '    proxy_pass http://mirrorgate;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '    proxy_set_header Host $http_host;',
    '    proxy_set_header X-Mirrorgate-Accel on;',
    '    proxy_buffering off;',
    '    proxy_request_buffering off;',
    '    proxy_read_timeout 900s;',
    '  }',
    `  location ${o.prefix} {`,
    '    internal;',
    `    alias ${o.storagePath.replace(/\/+$/, '')}/blobs/;`,
    '    types { }',
    '    default_type application/octet-stream;',
    '    etag off;',
    '    max_ranges 1;',
    '    add_header Docker-Content-Digest $upstream_http_docker_content_digest always;',
    '    add_header Docker-Distribution-Api-Version $upstream_http_docker_distribution_api_version always;',
    '    add_header ETag $upstream_http_etag always;',
    '  }',
    '}',
  ].join('\n');
}

/** Debian's nginx in front of a mirror with `storage.accelRedirect` on (startNginxServer). */
export function startAccelFront(opts: AccelFrontOptions): Promise<AccelFront> {
  return startNginxServer({
    server: (listen) => accelServerBlock({ listen, mirror: opts.mirror, storagePath: opts.storagePath, prefix: opts.prefix }),
    // The internal prefix answers 404 to a client: nginx is up without asking the mirror anything.
    probePath: opts.prefix,
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
  });
}
