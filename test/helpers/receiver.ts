import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery { path: string; logoutToken: string }

/** A relying party's back-channel logout endpoint on 127.0.0.1: records every logout token posted to it. */
export async function startLogoutReceiver(): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token) deliveries.push({ path: req.url ?? '', logoutToken: token });
      res.writeHead(token ? 200 : 400, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
