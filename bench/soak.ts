import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config/load.ts';
import { createRegistry } from '../src/registry.ts';
import { createLogger } from '../src/shared/logger.ts';
import { authorize, passwordPages } from './scenarios.ts';
import { basic, browser, pkce } from './browser.ts';

/**
 * Memory of `npm start` (docs/scaling.md, "Memory"): the real server process (src/main.ts, as
 * `npm start` runs it, development settings without the demo data), its resident memory (VmRSS)
 * once started and idle, then every 10 s under a steady mix — per cycle one complete password
 * login with its code exchange, one refresh_token grant and ten client_credentials grants, two
 * cycles at a time — for BENCH_SOAK_SECONDS (default 60 for `npm run bench`; 600 for the
 * ten-minute soak). Prints the curve.
 *
 * Rows: idle RSS (target ≤ 150 MB), and the mean RSS of the last third of the soak against the
 * first third's (target ≤ 1.1×: no growth).
 *
 * DATABASE_URL: the server engine (a fresh schema, dropped at the end); the embedded engine in a
 * fresh DATA_DIR otherwise.
 */

export type { Row } from './report.ts';
import type { Row } from './report.ts';
import { startCommand } from './start-command.ts';

const IDLE_TARGET_MB = 150;
const GROWTH_TARGET = 1.1;
const PASSWORD = 'soak bench password';

const rssMb = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface SoakOptions { seconds?: number; databaseUrl?: string | undefined; log?: (line: string) => void }

export async function run(options: SoakOptions = {}): Promise<Row[]> {
  const seconds = options.seconds ?? Number(process.env.BENCH_SOAK_SECONDS ?? 60);
  const url = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const engine = url ? 'server' : 'embedded';
  const schema = url ? `lanyard_bench_soak_${randomBytes(4).toString('hex')}` : undefined;
  const databaseUrl = url && schema ? `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'lanyard-bench-soak-'));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env = { NODE_ENV: 'development', SEED_DEMO: 'false', LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', ISSUER: issuer, SECRET_KEY: randomBytes(32).toString('base64url'), DATA_DIR: dataDir, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) };

  // The clients and the account, made before the server starts (the embedded engine's files are
  // then made by this process, as an operator's first `npm run migrate` makes them).
  if (schema && url) {
    const { openDatabase } = await import('../src/persistence/db.ts');
    const admin = await openDatabase({ url });
    await admin.exec(`CREATE SCHEMA "${schema}"`);
    await admin.close();
  }
  const web = { id: 'soak-web', secret: randomBytes(24).toString('base64url'), redirectUri: 'http://127.0.0.1:9/cb' };
  const service = { id: 'soak-service', secret: randomBytes(24).toString('base64url') };
  const email = 'soak@example.com';
  {
    const registry = await createRegistry(loadConfig({ ...env, LOG_LEVEL: 'silent' }), { logger: createLogger('silent'), deliver: false });
    await registry.clients.create({ clientId: service.id, clientSecret: service.secret, kind: 'service', name: 'Soak service' });
    await registry.clients.create({ clientId: web.id, clientSecret: web.secret, kind: 'web', name: 'Soak web', firstParty: true, redirectUris: [web.redirectUri] });
    await registry.accounts.create({ email, password: PASSWORD, name: 'Soak', emailVerified: true });
    await registry.close();
  }

  const root = join(import.meta.dirname, '..');
  const start = startCommand((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start);
  log(`soak: the server as npm start runs it: ${Object.entries(start.env).map(([k, v]) => `${k}=${v} `).join('')}node ${start.args.join(' ')} src/main.ts`);
  const child = spawn(process.execPath, [...start.args, '--no-warnings', join(root, 'src', 'main.ts')], {
    env: { PATH: process.env.PATH ?? '', ...start.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const pid = child.pid!;
  const curve: Array<{ t: number; rss: number; cycles: number }> = [];
  let idle = 0;
  let failed = 0;
  let cycles = 0;
  try {
    for (let waited = 0; !output.includes('is running'); waited += 200) {
      if (waited > 120_000 || child.exitCode !== null) throw new Error(`the server did not start: ${output.slice(-500)}`);
      await sleep(200);
    }
    // Start-up work settles (the embedded engine compiles its code in the background for ~20 s).
    await sleep(30_000);
    idle = rssMb(pid);
    log(`soak: ${engine}, idle RSS after start-up ${idle} MB; ${seconds} s of steady load (two cycles at a time: login + code + refresh + 10 client_credentials)`);

    const token = async (body: string, auth: string) => {
      const res = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth }, body });
      const json = (await res.json()) as { refresh_token?: string };
      if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const cycle = async () => {
      const { verifier, challenge } = pkce();
      const code = await authorize(browser(issuer), issuer, web, challenge, passwordPages(email, PASSWORD));
      const first = await token(new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: web.redirectUri, code_verifier: verifier }).toString(), basic(web.id, web.secret));
      await token(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token! }).toString(), basic(web.id, web.secret));
      for (let i = 0; i < 10; i += 1) await token('grant_type=client_credentials', basic(service.id, service.secret));
    };
    const started = performance.now();
    const end = started + seconds * 1000;
    const sampler = setInterval(() => {
      const t = Math.round((performance.now() - started) / 1000);
      const rss = rssMb(pid);
      curve.push({ t, rss, cycles });
      log(`  ${String(t).padStart(4)} s  RSS ${String(rss).padStart(4)} MB  ${'#'.repeat(Math.round(rss / 10))}  (${cycles} cycles)`);
    }, 10_000);
    await Promise.all([0, 1].map(async () => {
      while (performance.now() < end) {
        try {
          await cycle();
          cycles += 1;
        } catch (err) {
          failed += 1;
          if (failed <= 3) log(`  cycle failed: ${(err as Error).message.slice(0, 200)}`);
        }
      }
    }));
    clearInterval(sampler);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => { if (child.exitCode !== null) resolve(null); else child.once('exit', resolve); });
    if (schema && url) {
      const { openDatabase } = await import('../src/persistence/db.ts');
      const admin = await openDatabase({ url });
      await admin.exec(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
      await admin.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
  }

  const third = Math.max(1, Math.floor(curve.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const early = mean(curve.slice(0, third).map((c) => c.rss));
  const late = mean(curve.slice(-third).map((c) => c.rss));
  const growth = early ? late / early : 0;
  return [
    {
      scenario: `idle RSS of npm start (${engine})`,
      unit: 'MB',
      lanyard: idle,
      baseline: IDLE_TARGET_MB,
      ratio: Math.round((idle / IDLE_TARGET_MB) * 100) / 100,
      target: 1,
      kind: 'max',
      verdict: idle <= IDLE_TARGET_MB ? 'PASS' : 'MISS',
      notes: `VmRSS of the server process 30 s after "running", no request yet; baseline = the target (${IDLE_TARGET_MB} MB)`,
    },
    {
      scenario: `RSS under ${seconds} s of steady load, last third vs first third (${engine})`,
      unit: 'MB',
      lanyard: Math.round(late),
      baseline: Math.round(early),
      ratio: Math.round(growth * 100) / 100,
      target: GROWTH_TARGET,
      kind: 'max',
      verdict: curve.length < 3 ? '—' : growth <= GROWTH_TARGET ? 'PASS' : 'MISS',
      notes: `${curve.length} samples every 10 s; ${cycles} cycles (login + code + refresh + 10 client_credentials), ${failed} failed; curve: ${curve.map((c) => c.rss).join(' ')}`,
    },
  ];
}

if (import.meta.main) {
  const rows = await run();
  for (const r of rows) process.stdout.write(`${r.verdict.padEnd(4)}  ${r.scenario}: ${r.lanyard} MB against ${r.baseline} MB, ×${r.ratio} — ${r.notes}\n`);
  process.exit(0);
}
