/** A listen address as written in config or on the command line: ":5000", "127.0.0.1:5002", "[::1]:5000", "5000". */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

export function parseListen(text: string): ListenAddress | undefined {
  const t = text.trim();
  let host: string | undefined;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1];
    portText = v6[2]!;
  } else if (/^\d+$/.test(t)) {
    portText = t;
  } else {
    const i = t.lastIndexOf(':');
    if (i < 0) return undefined;
    host = t.slice(0, i) || undefined;
    portText = t.slice(i + 1);
    if (host && !/^[A-Za-z0-9.-]+$/.test(host)) return undefined;
  }
  if (!/^\d+$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host, port };
}

export function formatListen(addr: { host?: string | undefined; port: number }): string {
  const host = addr.host ?? '0.0.0.0';
  return host.includes(':') ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
}
