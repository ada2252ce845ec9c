import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real web server on 127.0.0.1 serving per-host answers (the Host header picks the site), for
 * the HTTPS-file method of domain verification (tests set the scheme to http and this port).
 */
export interface WebFile {
  status?: number;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export interface TestWebFiles {
  port: number;
  /** `host` → path → answer; anything else is 404. */
  sites: Map<string, Map<string, WebFile>>;
  requests: { host: string; path: string }[];
  set(host: string, path: string, file: WebFile): void;
  close(): Promise<void>;
}

export async function startWebFiles(): Promise<TestWebFiles> {
  const sites = new Map<string, Map<string, WebFile>>();
  const requests: { host: string; path: string }[] = [];
  const server: Server = createServer((req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const path = req.url ?? '/';
    requests.push({ host, path });
    const file = sites.get(host)?.get(path);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(file.status ?? 200, { 'content-type': 'text/plain', ...file.headers }).end(file.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sites,
    requests,
    set(host, path, file) {
      if (!sites.has(host)) sites.set(host, new Map());
      sites.get(host)!.set(path, file);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
