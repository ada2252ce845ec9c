import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between the application's pool and a real PostgreSQL server, to make the database
 * fail the way it fails in production without touching the shared server:
 * - `stop()`: closes the listener and every connection (a stopped server: refused, terminated);
 * - `freeze()`: keeps every connection open but moves no byte in either direction, and accepts
 *   new ones without answering (a server under SIGSTOP, or a network partition);
 * - `resume()`: forwards again (bytes held while frozen are delivered, as after SIGCONT);
 * - `start()`: listens again on the same port after `stop()`.
 */
export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  freeze(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  interface Pair { client: Socket; upstream: Socket; held: [Socket, Buffer][] }
  const pairs = new Set<Pair>();
  let frozen = false;
  let server: Server | undefined;
  let port = 0;

  const listen = async () => {
    const s = createServer((client) => {
      const upstream = connect(target.port, target.host);
      const pair: Pair = { client, upstream, held: [] };
      pairs.add(pair);
      // Bytes are forwarded by hand (not pipe(), whose backpressure handling can resume a paused
      // socket): while frozen they are held, in order, and delivered on resume.
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (frozen) pair.held.push([to, chunk]);
        else to.write(chunk);
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
      const end = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const stop = async () => {
    const s = server;
    server = undefined;
    for (const pair of pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    pairs.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get port() { return port; },
    urlFor(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    stop,
    start: listen,
    freeze() {
      frozen = true;
    },
    resume() {
      frozen = false;
      for (const pair of pairs) {
        for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
      }
    },
    close: stop,
  };
}
