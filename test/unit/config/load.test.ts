import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { loadConfig, ConfigError } from '../../../src/config/load.ts';

/** A key as `openssl rand` would make one, but the same on every run. */
const keyOf = (seed: string) => createHash('sha256').update(seed).digest('base64url');
const KEY = keyOf('seven');

/** `env` is refused at start-up with a problem line matching `named`. */
function expectRefused(env: Record<string, string>, named: RegExp): void {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).to.match(named);
    return;
  }
  expect.fail(`accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('builds a development configuration from defaults alone', () => {
    const config = loadConfig({});
    expect(config.env).to.equal('development');
    expect(config.port).to.equal(3000);
    expect(config.issuer).to.equal('http://localhost:3000');
    expect(config.databaseUrl).to.equal(undefined);
    expect(config.argon2).to.deep.equal({ memoryKiB: 19456, timeCost: 2, parallelism: 1 });
  });

  it('takes environment variables over files, with types coerced', () => {
    const config = loadConfig({ PORT: '8080', TRUST_PROXY: 'false', SEED_DEMO: 'no', ACCESS_TOKEN_TTL: '600', COOKIE_KEYS: `${keyOf('a')}, ${keyOf('b')}` });
    expect(config.port).to.equal(8080);
    expect(config.issuer).to.equal('http://localhost:8080');
    expect(config.trustProxy).to.equal(0);
    expect(config.seedDemo).to.equal(false);
    expect(config.ttl.accessToken).to.equal(600);
    expect(config.cookieKeys).to.deep.equal([keyOf('a'), keyOf('b')]);
  });

  it('reports a bad cookie key as COOKIE_KEYS with its position, never an internal path or the value', () => {
    const short = 'short-cookie-key';
    try {
      loadConfig({ COOKIE_KEYS: `${keyOf('a')},${short}` });
      expect.fail('accepted a short cookie key');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).to.deep.equal(['COOKIE_KEYS: key 2: each cookie key must be at least 32 characters']);
      expect(problems.join('\n')).not.to.contain(short);
    }
  });

  it('reads former secret keys from SECRET_KEYS_PREVIOUS and reports a bad one by position', () => {
    const old = keyOf('nine');
    const config = loadConfig({ SECRET_KEY: KEY, SECRET_KEYS_PREVIOUS: ` ${old} ` });
    expect(config.secretKeysPrevious?.map((k) => k.toString('base64url'))).to.deep.equal([old]);
    try {
      loadConfig({ SECRET_KEY: KEY, SECRET_KEYS_PREVIOUS: `${old},not-a-key` });
      expect.fail('accepted a malformed previous key');
    } catch (err) {
      const problems = (err as ConfigError).problems;
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^SECRET_KEYS_PREVIOUS: key 2: must be 32 random bytes/);
    }
  });

  it('bounds database waits and shutdown, with defaults', () => {
    const defaults = loadConfig({});
    expect(defaults.database).to.deep.equal({ connectTimeoutSeconds: 3, statementTimeoutSeconds: 5, idleInTransactionTimeoutSeconds: 15, preparedStatements: true });
    expect(defaults.shutdownTimeoutSeconds).to.equal(10);
    const tuned = loadConfig({ DATABASE_STATEMENT_TIMEOUT_SECONDS: '0.5', SHUTDOWN_TIMEOUT_SECONDS: '30' });
    expect(tuned.database.statementTimeoutSeconds).to.equal(0.5);
    expect(tuned.shutdownTimeoutSeconds).to.equal(30);
    try {
      loadConfig({ DATABASE_CONNECT_TIMEOUT_SECONDS: '0', DATABASE_STATEMENT_TIMEOUT_SECONDS: 'never' });
      expect.fail('accepted an unbounded wait');
    } catch (err) {
      const problems = (err as ConfigError).problems;
      expect(problems.some((p) => p.startsWith('DATABASE_CONNECT_TIMEOUT_SECONDS:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('DATABASE_STATEMENT_TIMEOUT_SECONDS:'))).to.equal(true);
    }
  });

  it('turns prepared statements off on request, and refuses a value that is not a yes or no (decision 0070)', () => {
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).database.preparedStatements).to.equal(false);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: '1' }).database.preparedStatements).to.equal(true);
    try {
      loadConfig({ DATABASE_PREPARED_STATEMENTS: 'sometimes' });
      expect.fail('accepted an unknown value');
    } catch (err) {
      expect((err as ConfigError).problems.some((p) => p.startsWith('DATABASE_PREPARED_STATEMENTS:'))).to.equal(true);
    }
  });

  it('reports every bad key at once, one line each, named by its variable', () => {
    try {
      loadConfig({ PORT: 'eighty', ISSUER: 'ftp://x', DATABASE_URL: 'mysql://db', ARGON2_MEMORY_KIB: '1024', TRUST_PROXY: 'maybe' });
      expect.fail('accepted a bad configuration');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).to.have.length(5);
      expect(problems.some((p) => p.startsWith('PORT:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('ISSUER:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('DATABASE_URL:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('ARGON2_MEMORY_KIB:') && p.includes('OWASP'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('TRUST_PROXY:'))).to.equal(true);
    }
  });

  it('refuses keys typed by hand: a SECRET_KEY or cookie key with too few distinct values', () => {
    expectRefused({ SECRET_KEY: Buffer.alloc(32, 7).toString('base64url') }, /SECRET_KEY.*too regular to be random/);
    expectRefused({ SECRET_KEY: 'A'.repeat(43) }, /SECRET_KEY.*too regular to be random/);
    expectRefused({ SECRET_KEY: KEY, SECRET_KEYS_PREVIOUS: Buffer.from('abcd'.repeat(8)).toString('base64url') }, /SECRET_KEYS_PREVIOUS.*too regular/);
    expectRefused({ COOKIE_KEYS: 'a'.repeat(32) }, /COOKIE_KEYS.*random/);
    expectRefused({ COOKIE_KEYS: `${keyOf('a')},${'abcd'.repeat(8)}` }, /COOKIE_KEYS.*random/);
    // What openssl rand gives is accepted, however many times we try.
    for (let i = 0; i < 200; i += 1) expect(loadConfig({ SECRET_KEY: randomBytes(32).toString('base64url'), COOKIE_KEYS: randomBytes(32).toString('base64') }).secretKey).to.have.length(32);
  });

  it('refuses an ISSUER ending with a slash, which would put "//" in every link built from it', () => {
    expectRefused({ ISSUER: 'https://id.example.test/' }, /ISSUER.*must not end with "\/"/);
    expectRefused({ ISSUER: 'https://example.test/idp/' }, /ISSUER.*must not end with "\/"/);
    expect(loadConfig({ ISSUER: 'https://example.test/idp' }).issuer).to.equal('https://example.test/idp');
  });

  it('refuses Google settings given in part, and a throttle wait longer than its window', () => {
    for (const env of [{ GOOGLE_ISSUER: 'https://accounts.google.com' }, { THROTTLE_MAX_DELAY_SECONDS: '7200', THROTTLE_WINDOW_SECONDS: '3600' }]) {
      try {
        loadConfig(env);
        expect.fail(`accepted ${JSON.stringify(env)}`);
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).problems.join('\n')).to.match(/GOOGLE_CLIENT_ID|google|windowSeconds/);
      }
    }
  });

  it('refuses as many hashing threads as the thread pool has, and bounds the pool\'s nice value', () => {
    expect(loadConfig({ PASSWORD_HASH_THREADS: '3', UV_THREADPOOL_SIZE: '4' }).passwordHashThreads).to.equal(3);
    expect(loadConfig({}).workerPoolNice).to.equal(10);
    for (const [env, named] of [[{ PASSWORD_HASH_THREADS: '4', UV_THREADPOOL_SIZE: '4' }, /PASSWORD_HASH_THREADS.*below UV_THREADPOOL_SIZE \(4\)/], [{ WORKER_POOL_NICE: '20' }, /WORKER_POOL_NICE/], [{ WORKER_POOL_NICE: '-1' }, /WORKER_POOL_NICE/]] as const) expectRefused(env, named);
  });

  it('bounds the embedded engine\'s shared buffers and refuses a malloc threshold glibc would ignore', () => {
    expect(loadConfig({}).embeddedSharedBuffersMb).to.equal(32);
    expect(loadConfig({ EMBEDDED_SHARED_BUFFERS_MB: '8' }).embeddedSharedBuffersMb).to.equal(8);
    expect(loadConfig({}).mallocMmapThreshold).to.equal(undefined);
    expect(loadConfig({ MALLOC_MMAP_THRESHOLD_: '131072' }).mallocMmapThreshold).to.equal(131072);
    for (const [env, named] of [[{ EMBEDDED_SHARED_BUFFERS_MB: '0' }, /EMBEDDED_SHARED_BUFFERS_MB/], [{ EMBEDDED_SHARED_BUFFERS_MB: '16MB' }, /EMBEDDED_SHARED_BUFFERS_MB/], [{ MALLOC_MMAP_THRESHOLD_: '128k' }, /MALLOC_MMAP_THRESHOLD_/], [{ MALLOC_MMAP_THRESHOLD_: '67108864' }, /MALLOC_MMAP_THRESHOLD_.*32 MiB/]] as const) expectRefused(env, named);
  });

  it('refuses development defaults in production', () => {
    try {
      loadConfig({ NODE_ENV: 'production', ISSUER: 'http://id.example.com', SEED_DEMO: 'true' });
      expect.fail('accepted production without a secret key');
    } catch (err) {
      const problems = (err as ConfigError).problems;
      expect(problems).to.include('SECRET_KEY: is required in production');
      expect(problems).to.include('ISSUER: must be https in production');
      expect(problems).to.include('SEED_DEMO: demo data cannot be seeded in production');
      expect(problems).to.include('SMTP_URL: is required in production (mail cannot be delivered without it)');
    }
  });

  it('accepts a complete production configuration and never echoes secret values in errors', () => {
    const config = loadConfig({ NODE_ENV: 'production', ISSUER: 'https://id.example.com', SECRET_KEY: KEY, DATABASE_URL: 'postgres://db/lanyard', SMTP_URL: 'smtp://mail.example.com:587' });
    expect(config.secretKey?.length).to.equal(32);
    expect(config.seedDemo).to.equal(false);
    try {
      loadConfig({ SECRET_KEY: 'short-secret-value' });
      expect.fail('accepted a short key');
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).to.contain('SECRET_KEY:').and.not.contain('short-secret-value');
    }
  });
});

describe('loadConfig: ORGANIZATIONS_PER_ACCOUNT', () => {
  it('defaults to 20 and takes a number from 1 to 1000', () => {
    expect(loadConfig({}).organizationsPerAccount).to.equal(20);
    expect(loadConfig({ ORGANIZATIONS_PER_ACCOUNT: '3' }).organizationsPerAccount).to.equal(3);
  });

  it('refuses 0, a negative, a fraction or a word at start-up, naming the variable', () => {
    for (const value of ['0', '-1', '2.5', 'many', '1001']) {
      try {
        loadConfig({ ORGANIZATIONS_PER_ACCOUNT: value });
        expect.fail(`accepted ${value}`);
      } catch (err) {
        expect(err, value).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).problems.join('\n')).to.contain('ORGANIZATIONS_PER_ACCOUNT');
      }
    }
  });
});
