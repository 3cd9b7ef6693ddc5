import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { reapOnExit } from './reap-children.js';
import { freePort, makeTempDir } from './tmp.js';

export interface NginxServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export interface NginxServerOptions {
  /** The `server { ... }` block, given the `listen` address to put in it. */
  server: (listen: string) => string;
  /** A path nginx answers by itself (any status), asked until it does. */
  probePath: string;
  workers?: number;
  /** More directives in the `http` block. */
  http?: string[];
}

/**
 * Debian's nginx in the foreground with its own prefix, config and pid file, no access log, `sendfile` on, on a
 * free loopback port (another one if that port was taken meanwhile).
 */
export async function startNginxServer(opts: NginxServerOptions): Promise<NginxServer> {
  const dir = await makeTempDir('mirrorgate-nginx-');
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
      ...(opts.http ?? []).map((d) => `  ${d}`),
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir.path}/${t};`),
      opts.server(`127.0.0.1:${port}`),
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
        const res = await request(`http://127.0.0.1:${port}${opts.probePath}`, { method: 'HEAD' });
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
