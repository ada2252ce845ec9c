import { isIP } from 'node:net';
import { z } from 'zod';
import { DatabaseUrlError, parseDatabaseUrl } from '../persistence/hosts.ts';

/**
 * The whole configuration of one Lanyard instance. Every option is documented here and in
 * docs/configuration.md; `load.ts` is the only reader of `process.env`.
 */

const seconds = (max: number) => z.coerce.number().int().min(1).max(max);

/** Booleans from JSON or from the environment ("true"/"false", "1"/"0", "yes"/"no"). */
const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })])
  .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes');

/** A DNS server as `dns.Resolver#setServers` takes it: `ip`, `ip:port` or `[ipv6]:port`. */
function isDnsServer(value: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  const withPort = /^([^:]+):(\d{1,5})$/.exec(value);
  const [ip, port] = bracketed ? [bracketed[1]!, bracketed[2]] : withPort ? [withPort[1]!, withPort[2]] : [value, undefined];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  return bracketed ? isIP(ip) === 6 : withPort ? isIP(ip) === 4 : isIP(ip) !== 0;
}

/**
 * Fewer distinct values than this in a key cannot be chance: 32 random bytes hold about 30
 * distinct ones (and fewer than 16 with a probability far below 1e-20), 32 random base64
 * characters about 25. It refuses keys typed by hand — `AAAA…`, a repeated word — not
 * low-entropy keys in general, which no test of one value can tell.
 */
const MIN_DISTINCT_BYTES = 16;
const MIN_DISTINCT_CHARS = 12;

const base64Key = z
  .string()
  .trim()
  .refine((value) => Buffer.from(value, 'base64url').length === 32, {
    message: 'must be 32 random bytes, base64url-encoded (e.g. `openssl rand -base64 32 | tr "+/" "-_" | tr -d "="`)',
  })
  // (Checked on a key of the right length only: one problem at a time.)
  .refine((value) => Buffer.from(value, 'base64url').length !== 32 || new Set(Buffer.from(value, 'base64url')).size >= MIN_DISTINCT_BYTES, {
    message: 'is too regular to be random (too few distinct bytes): generate it with `openssl rand -base64 32 | tr "+/" "-_" | tr -d "="`',
  })
  .transform((value) => Buffer.from(value, 'base64url'));

export const configSchema = z
  .object({
    /** development | test | production. Production refuses development-only defaults. */
    env: z.enum(['development', 'test', 'production']),
    /** TCP port of the HTTP server. */
    port: z.coerce.number().int().min(0).max(65535),
    /** Interface to listen on. Loopback by default; the container image sets 0.0.0.0. */
    host: z.string().min(1),
    /** The issuer identifier (OIDC Discovery §4.3): https, no query or fragment. Defaults to http://localhost:PORT. */
    issuer: z
      .string()
      .url()
      .refine((value) => {
        const url = new URL(value);
        return !url.search && !url.hash && (url.protocol === 'https:' || url.protocol === 'http:');
      }, { message: 'must be an http(s) URL without query or fragment' })
      // Every link, redirect URI and claim URL is built as ISSUER + "/path": with a trailing
      // slash they would all hold "//" and miss their routes. The issuer is compared exactly by
      // relying parties (OIDC Discovery §4.3), so it is refused rather than silently changed.
      .refine((value) => !value.endsWith('/'), { message: 'must not end with "/" (write https://id.example.com, not https://id.example.com/)' }),
    /**
     * Set by the loader, never by an operator: true when `issuer` is the http://localhost:PORT
     * default, i.e. this process's own PORT rather than the server's public URL. Commands that
     * put links into mail refuse to run on it (src/cli/main.ts).
     */
    issuerDefaulted: z.boolean().default(false),
    /**
     * PostgreSQL server URL. Empty: the embedded engine (PGlite) under dataDir. Several hosts with
     * libpq's `target_session_attrs` (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`)
     * make new connections look for the writable one (docs/decisions/0045-database-failover.md).
     */
    databaseUrl: z
      .string()
      .refine((value) => /^postgres(ql)?:\/\//.test(value), { message: 'must start with postgres:// or postgresql://' })
      .superRefine((value, ctx) => {
        if (!/^postgres(ql)?:\/\//.test(value)) return;
        try {
          parseDatabaseUrl(value);
        } catch (err) {
          if (!(err instanceof DatabaseUrlError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.message });
        }
      })
      .optional(),
    /** Where the embedded database (and the development secret key) live. */
    dataDir: z.string().min(1),
    /**
     * The embedded engine's shared_buffers in MB (PostgreSQL's page cache inside the process; with
     * a server, its operator sizes it). Every MB of it is resident from the start: 32 by default
     * (decision 0043); down to 1 to save up to 31 MB of an idle process, at the cost of more reads
     * through the operating system's cache of DATA_DIR (docs/decisions/0059-idle-memory-settings.md).
     */
    embeddedSharedBuffersMb: z.coerce.number().int().min(1).max(1024),
    /**
     * glibc's MALLOC_MMAP_THRESHOLD_ as the process was started with (glibc reads it itself, before
     * any code runs; read here so that a value glibc would silently ignore stops the start-up).
     * `npm start` and the container image set 131072: blocks of 128 KiB or more are mapped and
     * given back when freed, instead of staying in the heap after V8's compilers freed them
     * (decision 0059). Unset: glibc's own dynamic threshold.
     */
    mallocMmapThreshold: z.coerce.number().int().min(0).max(32 * 1024 * 1024, { message: 'must be at most 33554432 (32 MiB): glibc ignores a larger threshold' }).optional(),
    /**
     * 32-byte key that encrypts secrets at rest (signing keys' private parts, client secrets,
     * generated cookie keys). Required in production; generated under dataDir in development.
     */
    secretKey: base64Key.optional(),
    /**
     * Former SECRET_KEYs, comma-separated: they still open what they sealed, SECRET_KEY seals
     * everything new, and `secrets reseal` moves the rest over (docs/operations.md).
     */
    secretKeysPrevious: z.array(base64Key).optional(),
    /** Cookie-signing keys, newest first, comma-separated. Empty: generated once and kept in the database. */
    cookieKeys: z
      .array(z.string().min(32, 'each cookie key must be at least 32 characters')
        .refine((value) => value.length < 32 || new Set(value).size >= MIN_DISTINCT_CHARS, 'each cookie key must be random (too few distinct characters): generate it with `openssl rand -base64 32`'))
      .optional(),
    /**
     * Bounds on every wait for a PostgreSQL server (docs/decisions/0016-database-faults.md): a
     * pooled connection, one statement (the server cancels it; the client gives up a second
     * later), a transaction left idle. Past them a request gets 503 with Retry-After.
     */
    database: z.object({
      connectTimeoutSeconds: z.coerce.number().min(0.1).max(60),
      statementTimeoutSeconds: z.coerce.number().min(0.1).max(3600),
      idleInTransactionTimeoutSeconds: z.coerce.number().min(1).max(86_400),
      /**
       * Statements run often are prepared once per connection under a name (decision 0070; the
       * embedded engine since decision 0062), so the server parses and plans them once instead of
       * on every call. Off for a pooler in transaction mode that cannot keep a named statement
       * for the next transaction (PgBouncer before 1.21, or without max_prepared_statements).
       */
      preparedStatements: flag,
    }),
    /** After SIGTERM, how long requests in flight, the mail worker and the pool may take before the process exits 1. */
    shutdownTimeoutSeconds: z.coerce.number().min(1).max(600),
    /** pino level: fatal | error | warn | info | debug | trace | silent. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /**
     * How many reverse proxies stand between the clients and this server (0: none). The client's
     * address is the one the outermost trusted proxy saw: the entry that many places from the
     * right of X-Forwarded-For, never the leftmost one, which the client writes itself.
     * `true` means 1 and `false` 0. Host, X-Forwarded-Host and X-Forwarded-Proto are never
     * trusted: every absolute URL and the Secure flag of cookies come from ISSUER.
     */
    trustProxy: z
      .union([z.boolean(), z.number(), z.string()])
      .transform((value, ctx) => {
        if (value === true || value === 'true' || value === 'yes') return 1;
        if (value === false || value === 'false' || value === 'no') return 0;
        const hops = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
        if (!Number.isInteger(hops) || hops < 0 || hops > 10) {
          ctx.addIssue({ code: 'custom', message: 'must be the number of trusted proxy hops (0-10), or true (1) / false (0)' });
          return z.NEVER;
        }
        return hops;
      }),
    /** Seed demo clients and a demo account on first start. Refused in production. */
    seedDemo: flag,
    /** Expose development helpers such as /dev/mailbox. Refused in production. */
    devMailbox: flag,
    /** Lifetimes in seconds. */
    ttl: z.object({
      accessToken: seconds(86_400),
      idToken: seconds(86_400),
      authorizationCode: seconds(600),
      refreshToken: seconds(31_536_000),
      session: seconds(31_536_000),
      interaction: seconds(86_400),
      grant: seconds(31_536_000),
    }),
    /** argon2id parameters; the floor is OWASP's m=19 MiB, t=2, p=1. */
    argon2: z.object({
      memoryKiB: z.coerce.number().int().min(19_456, 'below the OWASP floor of 19456 KiB').max(4_194_304),
      timeCost: z.coerce.number().int().min(2, 'below the OWASP floor of 2').max(20),
      parallelism: z.coerce.number().int().min(1).max(16),
    }),
    /** Shortest password accepted (NIST SP 800-63B: at least 8). */
    passwordMinLength: z.coerce.number().int().min(8, 'NIST SP 800-63B requires at least 8').max(64),
    /** How long a password-reset link stays valid, in seconds. */
    passwordResetTtl: seconds(86_400),
    /** Days a closed account can still be reopened by logging in before its data is erased. */
    accountDeletionGraceDays: z.coerce.number().int().min(1).max(365),
    /** How long a sign-up verification code and link stay valid, in seconds. */
    signupCodeTtl: seconds(86_400),
    /** How many password hashes may wait for the argon2 thread pool before logins are told to retry. */
    passwordHashConcurrency: z.coerce.number().int().min(1).max(1024),
    /**
     * How many password hashes run at once (the others wait in that queue); 0: the number of
     * CPUs, but at most UV_THREADPOOL_SIZE − 1, so that other thread-pool work (ID token signing,
     * files, DNS) never waits behind hashes (docs/decisions/0051-hashing-beside-the-event-loop.md).
     */
    passwordHashThreads: z.coerce.number().int().min(0).max(256),
    /**
     * libuv's thread pool size as the process was started with (Node reads UV_THREADPOOL_SIZE
     * itself; read here so that the hashing can leave a thread free): 4 when unset, as Node's.
     */
    threadPoolSize: z.coerce.number().int().min(1).max(1024),
    /**
     * The nice value (0–19) given to libuv's pool threads, where argon2 runs, at start-up: under
     * a burst of logins the event loop and the database are scheduled before the hashing
     * (docs/decisions/0056-hashing-at-low-priority.md). 0 leaves them as they are. Linux only.
     */
    workerPoolNice: z.coerce.number().int().min(0).max(19),
    /** How long a client's metadata is cached in-process before the database is read again. */
    clientCacheSeconds: z.coerce.number().int().min(0).max(3600),
    /**
     * How long the token endpoints (refresh, userinfo, introspection) reuse an account's row,
     * in milliseconds of real time; writes this instance makes drop it at once, other instances'
     * apply within it (docs/decisions/0040-token-account-cache.md). 0 reads it every time.
     */
    accountCacheMilliseconds: z.coerce.number().int().min(0).max(5000),
    /** A rotated signing key is published this long before it starts signing (rolling restarts). */
    keyActivationDelaySeconds: z.coerce.number().int().min(0).max(604_800),
    /**
     * How often each instance re-reads the signing keys from the database, so that a rotation made
     * anywhere is published and used by every instance without a restart (0: only at start).
     * At most KEY_ACTIVATION_DELAY_SECONDS: every instance must publish a new key before any signs
     * with it (docs/decisions/0046-signing-keys-follow-the-database.md).
     */
    signingKeyRefreshSeconds: z.coerce.number().int().min(0).max(3600),
    /**
     * Let the server call relying parties on loopback and private addresses (back-channel logout
     * to an internal host). Off by default: the engine refuses special-use addresses against SSRF.
     * Relying parties are registered by the operator; nothing anyone else chooses (a domain to
     * verify, a connector's issuer) follows this flag.
     */
    allowPrivateNetworkCalls: flag,
    /**
     * Let what any account chooses reach loopback and private addresses: company OIDC connectors
     * (a test's or a developer's provider on 127.0.0.1) and the domain-verification file check.
     * On in development and test, off in production and refused there: any account may create an
     * organization, add a domain and register a connector, so none of them may reach this
     * server's network.
     */
    allowPrivateNetworkUpstreams: flag,
    /**
     * DNS servers for domain verification and its HTTPS check, comma-separated `ip[:port]`
     * (`[ipv6]:port`). Empty: the system's resolvers (/etc/resolv.conf; /etc/hosts is not read).
     */
    dnsServers: z.array(z.string().trim().refine(isDnsServer, { message: 'must be an IP address, ip:port or [ipv6]:port' })).optional(),
    /**
     * Domain verification (docs/decisions/0028-domain-verification.md). The HTTPS file's scheme
     * and port can be changed for tests and development only: production checks
     * https://<domain>:443. Held domains are re-checked every `recheckIntervalSeconds`
     * (0: no re-check worker in this process).
     */
    domainVerification: z.object({
      httpScheme: z.enum(['https', 'http']),
      httpPort: z.coerce.number().int().min(1).max(65535),
      timeoutSeconds: z.coerce.number().min(0.5).max(60),
      recheckIntervalSeconds: z.coerce.number().int().min(0).max(2_592_000),
    }),
    /** How long an organization's admin invitation link stays valid, in seconds (at most 30 days). */
    organizationInvitationTtl: seconds(2_592_000),
    /**
     * Organizations one account may be an admin of and still create another (1–1000): a bound on
     * what one account can make the service store and re-check. Joining by invitation is not
     * refused (another admin decided it).
     */
    organizationsPerAccount: z.coerce.number().int().min(1).max(1000),
    /** SMTP server for outgoing mail (smtp:// or smtps://, credentials in the URL). Empty: the development mailbox. */
    smtpUrl: z
      .string()
      .refine((value) => /^smtps?:\/\/[^/]+/.test(value), { message: 'must be smtp://[user:pass@]host[:port] or smtps://…' })
      .optional(),
    /** The From header of every message. */
    mailFrom: z.string().min(3).max(320),
    /** How often the delivery worker looks for due messages; 0 disables the worker (tests drive it). */
    mailPollSeconds: z.coerce.number().int().min(0).max(3600),
    /** Attempts before a message is marked failed (backoff doubles from 30 s, capped at 1 h). */
    mailMaxAttempts: z.coerce.number().int().min(1).max(50),
    /** Days the record of a sent message (recipient, template, subject, time; never its body) is kept (decision 0054). */
    mailSentRetentionDays: z.coerce.number().int().min(1).max(3650),
    /**
     * The outbox is vacuumed by the instance that deleted this many rows from it (sent bodies,
     * expired records) since its last VACUUM, so it stays flat even with autovacuum off during a
     * bulk send; 0 leaves it to autovacuum (decision 0054).
     */
    mailVacuumEvery: z.coerce.number().int().min(0).max(10_000_000),
    /** How often expired protocol rows are swept; 0 disables the sweeper. */
    sweepIntervalSeconds: z.coerce.number().int().min(0).max(86_400),
    /** Rows one statement of a sweep deletes (expired protocol rows, records of ended sessions). */
    sweepBatchSize: z.coerce.number().int().min(10).max(100_000),
    /**
     * Rows one sweep of one table deletes at most, in batches, before it leaves the rest to the
     * next sweep: a bound on one round's work. Several instances sweep disjoint rows.
     */
    sweepMaxRows: z.coerce.number().int().min(10).max(100_000_000),
    /**
     * Brute-force throttling (docs/decisions/0011-throttling-in-the-database.md). After
     * `freeAttempts` failures for one address or account (ten times as many from one client
     * address), each further failure doubles the wait from `baseDelaySeconds`, never beyond
     * `maxDelaySeconds`: there is no permanent lockout. Counters are forgotten after
     * `windowSeconds` without a failure.
     */
    /**
     * The Trello relying party (docs/flows/trello-migration.md): which client receives the
     * `trello_member_id` claim and may call /api/trello/members, and where "member linked"
     * events are posted (HMAC-signed with the client's secret; unset: events wait in the table).
     */
    /**
     * "Continue with Google": an upstream OpenID Connect provider (Google's issuer in production;
     * tests and development point it at a local provider). All three or none.
     */
    google: z.object({
      issuer: z.url({ protocol: /^https?$/ }).optional(),
      clientId: z.string().min(1).max(300).optional(),
      clientSecret: z.string().min(1).max(300).optional(),
    }).refine((g) => [g.issuer, g.clientId, g.clientSecret].every((v) => v === undefined) || [g.issuer, g.clientId, g.clientSecret].every((v) => v !== undefined), {
      message: 'set GOOGLE_ISSUER, GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET together, or none of them',
    }),
    trello: z.object({
      clientId: z.string().min(1).max(100),
      webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
    }),
    throttle: z.object({
      freeAttempts: z.coerce.number().int().min(1).max(100),
      baseDelaySeconds: z.coerce.number().min(0.1).max(3600),
      maxDelaySeconds: z.coerce.number().int().min(1).max(86_400),
      windowSeconds: z.coerce.number().int().min(60).max(2_592_000),
    }).refine((t) => t.maxDelaySeconds >= t.baseDelaySeconds, { message: 'maxDelaySeconds must be at least baseDelaySeconds' })
      // A counter quiet for the window starts over: a wait longer than the window would vanish.
      .refine((t) => t.maxDelaySeconds <= t.windowSeconds, { message: 'maxDelaySeconds must not exceed windowSeconds' }),
  })
  .superRefine((config, ctx) => {
    // A reset mail held back by the address's counter must leave the newest link sent still
    // valid: then nobody can keep an owner from resetting (src/flows/recovery/routes.ts).
    if (config.passwordResetTtl < config.throttle.maxDelaySeconds) {
      ctx.addIssue({ code: 'custom', path: ['passwordResetTtl'], message: 'must be at least THROTTLE_MAX_DELAY_SECONDS' });
    }
    // Decision 0051: one pool thread stays free of hashes for ID-token signing, files and DNS.
    if (config.passwordHashThreads > 0 && config.passwordHashThreads >= config.threadPoolSize) {
      ctx.addIssue({ code: 'custom', path: ['passwordHashThreads'], message: `must be below UV_THREADPOOL_SIZE (${config.threadPoolSize}), or ID-token signing, files and DNS wait behind password hashes; raise UV_THREADPOOL_SIZE instead` });
    }
    if (config.keyActivationDelaySeconds > 0 && config.signingKeyRefreshSeconds > config.keyActivationDelaySeconds) {
      ctx.addIssue({ code: 'custom', path: ['signingKeyRefreshSeconds'], message: 'must not exceed KEY_ACTIVATION_DELAY_SECONDS (every instance must publish a new key before one signs with it)' });
    }
    if (config.env !== 'production') return;
    if (!config.secretKey) {
      ctx.addIssue({ code: 'custom', path: ['secretKey'], message: 'is required in production' });
    }
    if (new URL(config.issuer).protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'must be https in production' });
    }
    if (config.seedDemo) {
      ctx.addIssue({ code: 'custom', path: ['seedDemo'], message: 'demo data cannot be seeded in production' });
    }
    if (!config.smtpUrl) {
      ctx.addIssue({ code: 'custom', path: ['smtpUrl'], message: 'is required in production (mail cannot be delivered without it)' });
    }
    if (config.devMailbox) {
      ctx.addIssue({ code: 'custom', path: ['devMailbox'], message: 'the development mailbox cannot be enabled in production' });
    }
    if (config.domainVerification.httpScheme !== 'https') {
      ctx.addIssue({ code: 'custom', path: ['domainVerification', 'httpScheme'], message: 'must be https in production' });
    }
    if (config.domainVerification.httpPort !== 443) {
      ctx.addIssue({ code: 'custom', path: ['domainVerification', 'httpPort'], message: 'must be 443 in production' });
    }
    if (config.allowPrivateNetworkUpstreams) {
      ctx.addIssue({ code: 'custom', path: ['allowPrivateNetworkUpstreams'], message: 'cannot be enabled in production (connector issuers are anyone’s choice: SSRF)' });
    }
    if (config.google.issuer && new URL(config.google.issuer).protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', path: ['google', 'issuer'], message: 'must be https in production' });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Environment variable → configuration path. The table in docs/configuration.md mirrors this. */
export const environmentVariables: Record<string, string> = {
  NODE_ENV: 'env',
  PORT: 'port',
  HOST: 'host',
  ISSUER: 'issuer',
  DATABASE_URL: 'databaseUrl',
  DATA_DIR: 'dataDir',
  EMBEDDED_SHARED_BUFFERS_MB: 'embeddedSharedBuffersMb',
  MALLOC_MMAP_THRESHOLD_: 'mallocMmapThreshold',
  SECRET_KEY: 'secretKey',
  SECRET_KEYS_PREVIOUS: 'secretKeysPrevious',
  COOKIE_KEYS: 'cookieKeys',
  DATABASE_CONNECT_TIMEOUT_SECONDS: 'database.connectTimeoutSeconds',
  DATABASE_STATEMENT_TIMEOUT_SECONDS: 'database.statementTimeoutSeconds',
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: 'database.idleInTransactionTimeoutSeconds',
  DATABASE_PREPARED_STATEMENTS: 'database.preparedStatements',
  SHUTDOWN_TIMEOUT_SECONDS: 'shutdownTimeoutSeconds',
  LOG_LEVEL: 'logLevel',
  TRUST_PROXY: 'trustProxy',
  SEED_DEMO: 'seedDemo',
  DEV_MAILBOX: 'devMailbox',
  ACCESS_TOKEN_TTL: 'ttl.accessToken',
  ID_TOKEN_TTL: 'ttl.idToken',
  AUTHORIZATION_CODE_TTL: 'ttl.authorizationCode',
  REFRESH_TOKEN_TTL: 'ttl.refreshToken',
  SESSION_TTL: 'ttl.session',
  INTERACTION_TTL: 'ttl.interaction',
  GRANT_TTL: 'ttl.grant',
  ARGON2_MEMORY_KIB: 'argon2.memoryKiB',
  ARGON2_TIME_COST: 'argon2.timeCost',
  ARGON2_PARALLELISM: 'argon2.parallelism',
  PASSWORD_HASH_CONCURRENCY: 'passwordHashConcurrency',
  PASSWORD_HASH_THREADS: 'passwordHashThreads',
  UV_THREADPOOL_SIZE: 'threadPoolSize',
  WORKER_POOL_NICE: 'workerPoolNice',
  PASSWORD_MIN_LENGTH: 'passwordMinLength',
  PASSWORD_RESET_TTL: 'passwordResetTtl',
  SIGNUP_CODE_TTL: 'signupCodeTtl',
  ACCOUNT_DELETION_GRACE_DAYS: 'accountDeletionGraceDays',
  CLIENT_CACHE_SECONDS: 'clientCacheSeconds',
  ACCOUNT_CACHE_MILLISECONDS: 'accountCacheMilliseconds',
  KEY_ACTIVATION_DELAY_SECONDS: 'keyActivationDelaySeconds',
  SIGNING_KEY_REFRESH_SECONDS: 'signingKeyRefreshSeconds',
  SWEEP_INTERVAL_SECONDS: 'sweepIntervalSeconds',
  SWEEP_BATCH_SIZE: 'sweepBatchSize',
  SWEEP_MAX_ROWS: 'sweepMaxRows',
  ALLOW_PRIVATE_NETWORK_CALLS: 'allowPrivateNetworkCalls',
  ALLOW_PRIVATE_NETWORK_UPSTREAMS: 'allowPrivateNetworkUpstreams',
  DNS_SERVERS: 'dnsServers',
  DOMAIN_VERIFICATION_HTTP_SCHEME: 'domainVerification.httpScheme',
  DOMAIN_VERIFICATION_HTTP_PORT: 'domainVerification.httpPort',
  DOMAIN_VERIFICATION_TIMEOUT_SECONDS: 'domainVerification.timeoutSeconds',
  DOMAIN_RECHECK_INTERVAL_SECONDS: 'domainVerification.recheckIntervalSeconds',
  ORGANIZATION_INVITATION_TTL: 'organizationInvitationTtl',
  ORGANIZATIONS_PER_ACCOUNT: 'organizationsPerAccount',
  SMTP_URL: 'smtpUrl',
  MAIL_FROM: 'mailFrom',
  MAIL_POLL_SECONDS: 'mailPollSeconds',
  MAIL_MAX_ATTEMPTS: 'mailMaxAttempts',
  MAIL_SENT_RETENTION_DAYS: 'mailSentRetentionDays',
  MAIL_VACUUM_EVERY: 'mailVacuumEvery',
  GOOGLE_ISSUER: 'google.issuer',
  GOOGLE_CLIENT_ID: 'google.clientId',
  GOOGLE_CLIENT_SECRET: 'google.clientSecret',
  TRELLO_CLIENT_ID: 'trello.clientId',
  TRELLO_WEBHOOK_URL: 'trello.webhookUrl',
  THROTTLE_FREE_ATTEMPTS: 'throttle.freeAttempts',
  THROTTLE_BASE_DELAY_SECONDS: 'throttle.baseDelaySeconds',
  THROTTLE_MAX_DELAY_SECONDS: 'throttle.maxDelaySeconds',
  THROTTLE_WINDOW_SECONDS: 'throttle.windowSeconds',
};
