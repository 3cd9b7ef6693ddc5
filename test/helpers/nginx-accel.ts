import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { reapOnExit } from './reap-children.js';
import { freePort, makeTempDir } from './tmp.js';

export interface AccelFront {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

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

/** Debian's nginx in front of a mirror with `storage.accelRedirect` on, in the foreground with its own prefix and config. */
export async function startAccelFront(opts: AccelFrontOptions): Promise<AccelFront> {
  const dir = await makeTempDir('mirrorgate-nginx-accel-');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = [
      // Workers of a root master drop to "nobody", which cannot read the 0700 temp dirs tests use.
      process.getuid?.() === 0 ? 'user root;' : '',
      `worker_processes ${opts.workers ?? 1};`,
      `pid ${dir.path}/nginx.pid;`,
      `error_log ${dir.path}/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  keepalive_requests 1000000;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir.path}/${t};`),
      accelServerBlock({ listen: `127.0.0.1:${port}`, mirror: opts.mirror, storagePath: opts.storagePath, prefix: opts.prefix }),
      '}',
      '',
    ].join('\n');
    const confPath = join(dir.path, 'nginx.conf');
    await writeFile(confPath, conf);
    const child = spawn('nginx', ['-p', dir.path, '-c', confPath, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    reapOnExit(child);
    let log = '';
    child.stderr!.on('data', (c: Buffer) => (log += c.toString('utf8')));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let up = false;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      try {
        // The internal prefix answers 404 to a client: nginx is up without asking the mirror anything.
        const res = await request(`http://127.0.0.1:${port}${opts.prefix}`, { method: 'HEAD' });
        await res.body.dump();
        up = true;
        break;
      } catch {
        await sleep(50);
      }
    }
    if (!up) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 3 && /in use/.test(log)) continue;
      await dir.cleanup();
      throw new Error(`nginx did not start: ${log}`);
    }
    let stopped = false;
    return {
      url: `http://127.0.0.1:${port}`,
      pid: child.pid!,
      async stop() {
        if (stopped) return;
        stopped = true;
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        await dir.cleanup();
      },
    };
  }
}
