import { expect } from 'chai';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { cliInProcess, spawnServer } from '../../helpers/cli.ts';
import { migratedDataDir } from '../../helpers/data-dir.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once `text` has appeared on the child's standard output. */
function printed(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    let errors = '';
    child.stderr!.on('data', (d: Buffer) => { errors += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before printing "${text}": ${errors}`)));
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

/** Whether a new connection to `port` is refused (the server stopped accepting). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function untilRefused(port: number): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (await refused(port)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the server kept accepting connections after SIGTERM');
}

/**
 * A token request whose body is sent in two parts: it is in flight until `finish()`. It asks
 * `Expect: 100-continue` (RFC 9110 §10.1.1), so `opened` resolves only once the server has parsed
 * the headers and the request is active on its side — a connection whose request has not been
 * read yet is idle to the server, and closing idle connections at shutdown is right.
 */
function tokenRequestInFlight(port: number, clientId: string, secret: string) {
  const body = 'grant_type=client_credentials&scope=';
  const socket: Socket = connect(port, '127.0.0.1');
  let response = '';
  let continued: () => void;
  const opened = new Promise<void>((resolve) => { continued = resolve; });
  socket.on('data', (d: Buffer) => {
    response += d.toString();
    if (response.includes('100 Continue')) continued();
  });
  const CONTINUE = /^HTTP\/1\.1 100 Continue\r\n\r\n/;
  const answered = new Promise<string>((resolve) => socket.on('close', () => resolve(response.replace(CONTINUE, ''))));
  socket.once('connect', () => {
    socket.write([
      'POST /token HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      `Authorization: Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'Content-Type: application/x-www-form-urlencoded',
      `Content-Length: ${body.length}`,
      'Expect: 100-continue',
      '',
      body.slice(0, 10),
    ].join('\r\n'));
  });
  return { opened, answered, finish: () => socket.write(body.slice(10)), socket };
}

/**
 * SIGTERM on the real process (src/main.ts): it stops accepting, finishes the requests in flight,
 * closes the database and exits 0; past SHUTDOWN_TIMEOUT_SECONDS it exits 1.
 */
describe('graceful shutdown on SIGTERM (the real server process)', function () {
  this.timeout(90_000);
  let dataDir: string;
  let env: Record<string, string>;
  let client: { id: string; secret: string };

  before(async () => {
    dataDir = await migratedDataDir(mkdtempSync(join(tmpdir(), 'lanyard-shutdown-')));
    env = { DATA_DIR: dataDir, SECRET_KEY: randomBytes(32).toString('base64url'), LOG_LEVEL: 'info' };
    // The client is made by the CLI's entry in this process, in the data directory the server opens.
    const created = await cliInProcess(['clients', 'create', '--id', 'worker', '--kind', 'service', '--name', 'Worker'], env);
    expect(created.code, created.stderr).to.equal(0);
    client = { id: 'worker', secret: /client_secret (\S+)/.exec(created.stdout)![1]! };
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  const start = async (extra: Record<string, string> = {}) => {
    for (let attempt = 1; ; attempt += 1) {
      // A free port may be taken by another process before the server binds it: try another.
      const port = await freePort();
      const child = spawnServer({ ...env, PORT: String(port), ...extra });
      const done = exited(child);
      try {
        await printed(child, 'Lanyard is running');
        return { port, child, done };
      } catch (err) {
        if (attempt === 3 || !/address in use/.test((err as Error).message)) throw err;
      }
    }
  };

  it('stops accepting, answers the request in flight, and exits 0', async () => {
    const { port, child, done } = await start();
    const request = tokenRequestInFlight(port, client.id, client.secret);
    await request.opened;
    child.kill('SIGTERM');
    await untilRefused(port);
    request.finish();
    const response = await request.answered;
    expect(response).to.match(/^HTTP\/1\.1 200 OK/);
    expect(response.toLowerCase()).to.contain('connection: close');
    expect(response).to.contain('"access_token"');
    const { code, stderr } = await done;
    expect(code, stderr).to.equal(0);
  });

  it('exits 1 when a request is still in flight after SHUTDOWN_TIMEOUT_SECONDS', async () => {
    const { port, child, done } = await start({ SHUTDOWN_TIMEOUT_SECONDS: '1' });
    const request = tokenRequestInFlight(port, client.id, client.secret);
    await request.opened;
    child.kill('SIGTERM');
    await untilRefused(port);
    const { code, stderr } = await done; // the body never completes
    request.socket.destroy();
    expect(code).to.equal(1);
    expect(stderr).to.contain('SHUTDOWN_TIMEOUT_SECONDS: still stopping after 1 s (1 requests in flight); exiting');
    expect(stderr).not.to.match(/\n\s+at /); // no stack trace
  });
});
