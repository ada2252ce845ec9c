import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The production-shaped deployment of bench/cluster.sh, started by a test: HAProxy, Lanyard
 * instances, PgBouncer, a PostgreSQL primary and its streaming standby, all on loopback.
 */

const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'bench', 'cluster.sh');

const onPath = (name: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

function postgresBin(): string | undefined {
  try {
    const dirs = execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    const bin = dirs.at(-1);
    return bin && existsSync(join(bin, 'initdb')) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** Why the cluster cannot be brought up on this machine, or undefined when it can. */
export function clusterUnavailable(components: 'all' | 'postgres' = 'all'): string | undefined {
  // .ci/run runs the suite twice (embedded, then the server); these tests start their own
  // PostgreSQL servers whatever the engine, so CI runs them once, in the server pass.
  if (process.env.LANYARD_CLUSTER_TESTS === 'skip') return 'LANYARD_CLUSTER_TESTS=skip (CI runs them in its PostgreSQL-server pass)';
  const missing: string[] = [];
  if (!postgresBin()) missing.push('the PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)');
  if (components === 'all') for (const tool of ['haproxy', 'pgbouncer', 'curl']) if (!onPath(tool)) missing.push(tool);
  return missing.length ? `${missing.join(', ')} not installed (apt-get install -y haproxy pgbouncer curl; .ci/run installs them)` : undefined;
}

export interface Cluster {
  dir: string;
  /** cluster.env: ports, ISSUER, DATABASE_URL, DIRECT_DATABASE_URL, SECRET_KEY. */
  env: Record<string, string>;
  issuer: string;
  /** http://127.0.0.1:port of each Lanyard instance, in order. */
  instances: string[];
  /** The pid of instance `i` (0-based) as the script started it. */
  pid(i: number): number;
  /** Runs `bench/cluster.sh <command>` on this cluster. */
  run(command: string): Promise<void>;
  down(): Promise<void>;
}

function runScript(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, args, { env: { ...process.env, ...env }, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bench/cluster.sh ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

/**
 * Brings a cluster up in a fresh directory. `instanceEnv` reaches the Lanyard instances (and is
 * what the test changes from the defaults, e.g. SIGNING_KEY_REFRESH_SECONDS).
 */
export async function startCluster(options: { components?: 'all' | 'postgres'; instanceEnv?: Record<string, string> } = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lanyard-cluster-'));
  // PostgreSQL and PgBouncer run as the postgres user when the tests run as root.
  chmodSync(dir, 0o755);
  const scriptEnv = {
    CLUSTER_DIR: dir,
    CLUSTER_FAST: '1',
    CLUSTER_COMPONENTS: options.components ?? 'all',
    // The instances inherit the test runner's environment: not its database or engine settings.
    DATABASE_URL: '',
    NODE_ENV: 'development',
    ...options.instanceEnv,
  };
  try {
    await runScript(['up'], scriptEnv);
  } catch (err) {
    await runScript(['down'], scriptEnv).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const env = Object.fromEntries(readFileSync(join(dir, 'cluster.env'), 'utf8').trim().split('\n').map((line) => {
    const at = line.indexOf('=');
    return [line.slice(0, at), line.slice(at + 1)];
  }));
  const count = Number(env.INSTANCES ?? 0);
  const instances = options.components === 'postgres' ? [] : Array.from({ length: count }, (_, i) => `http://127.0.0.1:${env[`LANYARD_PORT_${i + 1}`]}`);
  let stopped = false;
  return {
    dir,
    env,
    issuer: env.ISSUER ?? '',
    instances,
    pid: (i) => Number(readFileSync(join(dir, `lanyard${i + 1}.pid`), 'utf8').trim()),
    run: (command) => runScript([command], scriptEnv),
    async down() {
      if (stopped) return;
      stopped = true;
      await runScript(['down'], scriptEnv);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A browser's cookie jar and redirects, over plain fetch, that can send each request to any
 * instance: the URL's origin (the issuer, i.e. HAProxy) is replaced by the instance chosen. Cookies
 * are kept by name and path (RFC 6265 §5.4: the port is not part of a cookie's scope, and every
 * instance is 127.0.0.1).
 */
export class InstanceBrowser {
  private readonly jar = new Map<string, { value: string; path: string }>();
  private readonly issuer: string;

  constructor(issuer: string) {
    this.issuer = issuer;
  }

  private cookieHeader(path: string): string {
    return [...this.jar.entries()]
      .filter(([, c]) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map(([key, c]) => `${key.split('\n')[0]}=${c.value}`)
      .join('; ');
  }

  private keep(res: Response, requestPath: string): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((p) => p.trim());
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? requestPath.replace(/\/[^/]*$/, '') ?? '/';
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()));
      const key = `${name}\n${path}`;
      if (expired || value === '') this.jar.delete(key);
      else this.jar.set(key, { value, path });
    }
  }

  /** `url` (absolute on the issuer, or a path) sent to `instance` (http://127.0.0.1:port). */
  async request(instance: string, url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url.startsWith('/') ? url : url.replace(this.issuer, ''), instance);
    const headers: Record<string, string> = {};
    const cookies = this.cookieHeader(target.pathname);
    if (cookies) headers.cookie = cookies;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(target, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.keep(res, target.pathname);
    return res;
  }
}

/** The CSRF token of a rendered form. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no CSRF token on the page: ${html.slice(0, 300)}`);
  return match[1]!;
}
