import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { loadConfig, ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../shared/logger.ts';
import { isAppError } from '../shared/errors.ts';
import { openDatabase, timeoutsFrom, DatabaseConnectError, DatabaseUnavailableError, type Database } from '../persistence/db.ts';
import { migrate, schemaStatus, DatabaseTooNewError } from '../persistence/migrate.ts';
import { createRegistry, type Registry } from '../registry.ts';
import { runEmbeddedUpkeep } from '../persistence/embedded-upkeep.ts';
import type { ClientKind } from '../persistence/queries/clients.ts';
import { trelloImport, trelloMigrate, type CliIo } from './trello.ts';
import { SecretKeyMismatchError } from '../config/secret-key.ts';
import { resealSecrets } from './secrets.ts';
import { seedAccounts } from './seed-accounts.ts';
import { createAccountQueries } from '../persistence/queries/accounts.ts';

/**
 * The command-line entry: `npm run cli -- <command>` (docs/operations.md).
 * With the embedded engine, stop the server first: one process at a time may open its files.
 */
/**
 * Each command's help, declared once: `npm run cli -- <command> --help` prints its entry, and the
 * general usage (`--help` alone) lists every entry's synopsis. A new command adds its entry here.
 */
const HELP: Record<string, { synopsis: string; details?: string }> = {
  migrate: {
    synopsis: `  migrate [--status]                       apply pending migrations (or list them)`,
    details: `The server applies migrations at start too. With the embedded engine, stop the server first:
one process at a time may open its files.`,
  },
  clients: {
    synopsis: `  clients list
  clients create --id ID --kind web|native|service --name NAME
                 [--redirect-uri URI]... [--post-logout-redirect-uri URI]...
                 [--backchannel-logout-uri URI] [--first-party]
  clients update ID [--name NAME] [--redirect-uri URI]... [--post-logout-redirect-uri URI]...
                 [--backchannel-logout-uri URI|--no-backchannel-logout] [--first-party|--third-party]
                 [--rotate-secret]
  clients delete ID`,
    details: `Kinds: web (secret, authorization code + PKCE), native (public, PKCE S256; private-use
scheme or loopback redirect), service (secret, client_credentials). A secret is printed once.
--first-party marks our own products: no consent page for web clients (docs/flows/clients.md).`,
  },
  keys: {
    synopsis: `  keys list
  keys rotate                              add new signing keys; old ones stay published until
                                           everything they signed has expired`,
  },
  accounts: {
    synopsis: `  accounts create --email EMAIL [--name NAME]   password read from standard input
  accounts purge                           erase closed accounts whose grace period is over
  accounts require-two-step --email EMAIL [--off]
                                           require two-step verification at the next login
                                           (or stop requiring it)`,
  },
  trello: {
    synopsis: `  trello import FILE                       import legacy Trello accounts from JSON Lines
                                           (docs/trello-import-format.md); re-running updates
  trello migrate [--dry-run]               link every unlinked Trello account to a new account
                                           without password and email a set-password link;
                                           --dry-run lists what it would do and every conflict`,
    details: `trello migrate queues the set-password mail for the server's mail worker; the links in it are
built from ISSUER, which must be the server's public URL (the same ISSUER and SECRET_KEY as the
server). Outside tests it refuses to run without ISSUER. Exit status 3: members were left
unlinked by conflicts, each listed on standard error with what the person can do.`,
  },
  secrets: {
    synopsis: `  secrets reseal                           re-seal every secret at rest with SECRET_KEY after a
                                           rotation (docs/operations.md); resumable`,
  },
  seed: {
    synopsis: `  seed accounts --count N [--from K]       create N verified test accounts (not in production),
                                           one password for all, read from standard input`,
    details: `Addresses first.last.K@domain (example domains only) for K = --from (default 1) … K+N−1;
an address already taken is skipped, so a second run with another --from adds more. Set-based:
one INSERT per 10,000 accounts, then ANALYZE. Every seeded account has the SAME argon2id hash of
the one password, computed once: a million hashes at argon2id's cost would take hours of CPU,
and a login still verifies that hash at full cost. For load tests and benchmarks
(docs/data-at-scale.md); refused when NODE_ENV=production.`,
  },
  mail: {
    synopsis: `  mail failed                              list messages that could not be delivered
  mail retry [ID]...                       queue failed messages again (all, or the listed ids)
  mail test --email EMAIL                  queue a test message and deliver it now`,
  },
};

const USAGE = `usage: npm run cli -- <command> [--help]

${Object.values(HELP).map((h) => h.synopsis).join('\n')}

npm run cli -- <command> --help shows one command's help.
`;

/** One command's help, or the general usage for a command we do not know. */
function helpFor(command: string | undefined): string {
  const help = command ? HELP[command] : undefined;
  if (!help) return USAGE;
  return `usage: npm run cli -- ${command} …\n\n${help.synopsis}\n${help.details ? `\n${help.details}\n` : ''}`;
}

const options = {
  status: { type: 'boolean' },
  id: { type: 'string' },
  kind: { type: 'string' },
  name: { type: 'string' },
  email: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'backchannel-logout-uri': { type: 'string' },
  'no-backchannel-logout': { type: 'boolean' },
  'first-party': { type: 'boolean' },
  'third-party': { type: 'boolean' },
  'rotate-secret': { type: 'boolean' },
  off: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  count: { type: 'string' },
  from: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

export type { CliIo } from './trello.ts';

/**
 * Where a command reads and writes, passed in rather than taken from `process`, so that the same
 * entry runs in a process of its own (below) or inside another program (the tests).
 */
export interface CliContext extends CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** An open, migrated database to use instead of opening the one the configuration names; left open. */
  db?: Database;
}

/** The process's own streams: how `npm run cli` runs. */
export function processContext(): CliContext {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

async function readPassword(io: CliContext): Promise<string> {
  const rl = createInterface({ input: io.stdin, terminal: false });
  if (io.stdin.isTTY) io.stderr.write('Password: ');
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

async function withRegistry<T>(config: Config, io: CliContext, fn: (registry: Registry) => Promise<T>): Promise<T> {
  // A command never delivers: it queues, and the server's workers send (docs/operations.md).
  const registry = await createRegistry(config, { logger: createLogger(config.logLevel === 'silent' ? 'silent' : 'warn', io.stdout), deliver: false, db: io.db });
  try {
    const result = await fn(registry);
    // The embedded engine has no autovacuum (decision 0064) and a command runs no sweeper: what
    // a command wrote in bulk (an import, a migration, seeded accounts) is vacuumed and analysed
    // here, in the command's own time, rather than by the server's first round after it starts,
    // which would hold the one connection for as long. Nothing due costs one statistics query.
    // The command itself succeeded (and may have printed a secret shown once): a failed upkeep
    // is a warning, not a failed command — the server's sweeper does the same work later.
    if (registry.db.engine === 'pglite') {
      await runEmbeddedUpkeep(registry.db, registry.logger).catch((err: unknown) => registry.logger.warn({ err: { message: (err as Error).message } }, 'embedded engine upkeep after the command failed'));
    }
    return result;
  } finally {
    await registry.close();
  }
}

async function clientsCommand(config: Config, io: CliContext, action: string | undefined, positional: string | undefined, v: Values): Promise<void> {
  const out = (line: string) => io.stdout.write(`${line}\n`);
  await withRegistry(config, io, async ({ clients }) => {
    switch (action) {
      case 'list': {
        for (const c of await clients.list()) {
          const uris = (c.metadata.redirect_uris as string[] | undefined) ?? [];
          out(`${c.client_id}\t${c.kind}\t${c.first_party ? 'first-party' : 'third-party'}\t${c.name}\t${uris.join(' ')}`);
        }
        return;
      }
      case 'create': {
        if (!v.id || !v.kind || !v.name) throw new UsageError('clients create needs --id, --kind and --name');
        if (!['web', 'native', 'service'].includes(v.kind)) throw new UsageError('--kind must be web, native or service');
        const created = await clients.create({
          clientId: v.id,
          kind: v.kind as ClientKind,
          name: v.name,
          redirectUris: v['redirect-uri'],
          postLogoutRedirectUris: v['post-logout-redirect-uri'],
          backchannelLogoutUri: v['backchannel-logout-uri'],
          firstParty: v['first-party'] ?? false,
        });
        out(`client_id     ${created.clientId}`);
        out(created.clientSecret ? `client_secret ${created.clientSecret}   (shown once)` : 'public client: no secret; PKCE S256 is required');
        return;
      }
      case 'update': {
        if (!positional) throw new UsageError('clients update needs the client id');
        const result = await clients.update(positional, {
          name: v.name,
          redirectUris: v['redirect-uri'],
          postLogoutRedirectUris: v['post-logout-redirect-uri'],
          backchannelLogoutUri: v['no-backchannel-logout'] ? null : v['backchannel-logout-uri'],
          firstParty: v['first-party'] ? true : v['third-party'] ? false : undefined,
          rotateSecret: v['rotate-secret'],
        });
        out(`updated ${positional}`);
        if (result.clientSecret) out(`client_secret ${result.clientSecret}   (shown once)`);
        return;
      }
      case 'delete': {
        if (!positional) throw new UsageError('clients delete needs the client id');
        await clients.delete(positional);
        out(`deleted ${positional}`);
        return;
      }
      default:
        throw new UsageError(`unknown clients command: ${action ?? ''}`);
    }
  });
}

class UsageError extends Error {}

/** Runs one command and returns its exit status; `io` is where it reads and writes (the process's own streams by default). */
export async function run(argv: string[], env: NodeJS.ProcessEnv, io: CliContext = processContext()): Promise<number> {
  const out = (line: string) => io.stdout.write(`${line}\n`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // An unknown option after a known command: that command's help, not the whole list.
    const command = argv.find((arg) => !arg.startsWith('-'));
    io.stderr.write(`${(err as Error).message}\n\n${helpFor(command)}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, action, positional] = positionals;
  if (v.help || !command) {
    if (command && !(command in HELP)) {
      io.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
    }
    out(helpFor(command));
    return command || v.help ? 0 : 2;
  }

  try {
    const config = loadConfig(env);
    switch (command) {
      case 'migrate': {
        const db = io.db ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl ? undefined : config.dataDir, sharedBuffersMb: config.embeddedSharedBuffersMb, timeouts: timeoutsFrom(config.database), preparedStatements: config.database.preparedStatements }));
        try {
          if (v.status) {
            const status = await schemaStatus(db);
            if (status.tooNew !== undefined) out(`database has migration ${status.tooNew}, newer than this release`);
            out(status.pending.length ? `pending: ${status.pending.join(', ')}` : 'up to date');
          } else {
            const applied = await migrate(db);
            out(applied.length ? `applied: ${applied.join(', ')}` : 'up to date: nothing to apply');
          }
        } finally {
          if (!io.db) await db.close();
        }
        return 0;
      }
      case 'clients':
        await clientsCommand(config, io, action, positional, v);
        return 0;
      case 'keys':
        await withRegistry(config, io, async ({ signingKeys }) => {
          if (action === 'rotate') {
            const kids = await signingKeys.rotate(config.keyActivationDelaySeconds, config.ttl.idToken);
            out(`added ${kids.join(', ')}; every instance publishes them within SIGNING_KEY_REFRESH_SECONDS and signs with them from ${config.keyActivationDelaySeconds}s from now (docs/operations.md)`);
          } else if (action === 'list') {
            for (const k of await signingKeys.list()) {
              out(`${k.kid}\t${k.alg}\tactive from ${k.activates_at.toISOString()}\t${k.unpublish_at ? `unpublished at ${k.unpublish_at.toISOString()}` : 'current'}`);
            }
          } else {
            throw new UsageError(`unknown keys command: ${action ?? ''}`);
          }
        });
        return 0;
      case 'accounts':
        if (action === 'purge') {
          await withRegistry(config, io, async ({ accountClosure }) => {
            const ids = await accountClosure.eraseDue(100_000);
            out(ids.length ? `erased ${ids.length}: ${ids.join(' ')}` : 'nothing to erase');
          });
          return 0;
        }
        if (action === 'require-two-step') {
          if (!v.email) throw new UsageError('accounts require-two-step needs --email');
          await withRegistry(config, io, async ({ accounts, twoStep }) => {
            const account = await accounts.findByEmail(v.email!);
            if (!account) throw new UsageError(`no account has the address ${v.email}`);
            await twoStep.setRequired(account.id, !v.off);
            out(v.off ? `${account.email}: two-step verification no longer required` : `${account.email}: two-step verification required from the next login`);
          });
          return 0;
        }
        if (action !== 'create' || !v.email) throw new UsageError('accounts create needs --email');
        await withRegistry(config, io, async ({ accounts }) => {
          const password = await readPassword(io);
          if (password.length < 8) throw new UsageError('the password must be at least 8 characters');
          const account = await accounts.create({ email: v.email!, name: v.name, password, emailVerified: true });
          out(`created ${account.id} ${account.email}`);
        });
        return 0;
      case 'trello': {
        if (action === 'import') {
          const file = positional;
          if (!file) throw new UsageError('trello import needs a FILE');
          return withRegistry(config, io, (registry) => trelloImport(registry, file, io));
        }
        if (action === 'migrate') {
          // The set-password links in the queued mail are built from ISSUER: its default is this
          // command's own PORT, not the server's public URL, and the links would lead nowhere.
          // Tests run the command on the default on purpose; the dry run queues nothing.
          if (!v['dry-run'] && config.issuerDefaulted && config.env !== 'test') {
            throw new ConfigError([`ISSUER: not set; trello migrate builds the set-password links of its mail from it: set it to the server's public URL (without it the links would point to ${config.issuer})`]);
          }
          return withRegistry(config, io, (registry) => trelloMigrate(registry, Boolean(v['dry-run']), io));
        }
        throw new UsageError(`unknown trello command: ${action ?? ''}`);
      }
      case 'secrets': {
        if (action !== 'reseal') throw new UsageError(`unknown secrets command: ${action ?? ''}`);
        const report = await withRegistry(config, io, (registry) => resealSecrets(registry));
        for (const c of report.columns) {
          out(`${c.name}: ${c.resealed} re-sealed${c.unreadable.length ? `, ${c.unreadable.length} open with no configured key` : ''}`);
          for (const key of c.unreadable) io.stderr.write(`${c.name} ${key}\n`);
        }
        if (report.columns.some((c) => c.unreadable.length)) {
          io.stderr.write('some values open with no configured key: add the key that sealed them to SECRET_KEYS_PREVIOUS and run again\n');
          return 1;
        }
        out(`every sealed value opens with SECRET_KEY (key ${report.keyId}) alone: SECRET_KEYS_PREVIOUS can be removed`);
        return 0;
      }
      case 'seed': {
        if (action !== 'accounts') throw new UsageError(`unknown seed command: ${action ?? ''}`);
        if (config.env === 'production') throw new UsageError('seed accounts is refused when NODE_ENV=production');
        const count = Number(v.count);
        const from = v.from === undefined ? 1 : Number(v.from);
        if (!Number.isInteger(count) || count < 1 || count > 100_000_000) throw new UsageError('seed accounts needs --count N (1 … 100,000,000)');
        if (!Number.isInteger(from) || from < 0) throw new UsageError('--from must be a whole number ≥ 0');
        const password = await readPassword(io);
        if (password.length < 8) throw new UsageError('the password must be at least 8 characters');
        await withRegistry(config, io, async ({ db, hasher }) => {
          const passwordHash = await hasher.hash(password);
          const result = await seedAccounts({ db, accounts: createAccountQueries(db) }, {
            count, from, passwordHash,
            onBatch: (p) => { if (p.done === p.count || p.done % 100_000 === 0) io.stderr.write(`${p.done} / ${p.count} (${Math.round(p.done / p.seconds)} /s)\n`); },
          });
          out(`created ${result.inserted} accounts in ${result.seconds.toFixed(1)} s (${count - result.inserted} addresses already taken); one password hash for all; accounts analysed`);
        });
        return 0;
      }
      case 'mail':
        await withRegistry(config, io, async ({ mail, db, clock }) => {
          if (action === 'failed') {
            const failed = await mail.queries.listFailed(1000);
            if (!failed.length) out('no failed messages');
            for (const m of failed) out(`${m.id}\t${m.created_at.toISOString()}\t${m.recipient}\t${m.template}\t${m.attempts} attempts\t${m.last_error ?? ''}`);
          } else if (action === 'retry') {
            const ids = positionals.slice(2);
            out(`queued again: ${await mail.queries.retryFailed(new Date(clock.now()), ids)}`);
            // Only through a real SMTP server: without one, this process's development mailbox
            // would swallow the messages; they wait for the server's worker instead.
            if (config.smtpUrl) await mail.delivery.deliverDue();
          } else if (action === 'test') {
            if (!v.email) throw new UsageError('mail test needs --email');
            const id = await db.transaction((tx) => mail.outbox.enqueue(tx, { to: v.email!, template: 'test', data: {} }));
            if (config.smtpUrl) await mail.delivery.deliverDue();
            const row = await mail.queries.find(id);
            out(`${id}: ${row?.status}${row?.last_error ? ` (${row.last_error})` : ''}`);
          } else {
            throw new UsageError(`unknown mail command: ${action ?? ''}`);
          }
        });
        return 0;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${err.message}\n\n${helpFor(command)}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      for (const line of err.problems) io.stderr.write(`${line}\n`);
      return 1;
    }
    if (err instanceof DatabaseConnectError || err instanceof DatabaseTooNewError || err instanceof SecretKeyMismatchError) {
      io.stderr.write(`${err.message}\n`);
      return 1;
    }
    if (err instanceof DatabaseUnavailableError) {
      io.stderr.write(`DATABASE_URL: the database stopped answering (${err.message})\n`);
      return 1;
    }
    if (isAppError(err)) {
      io.stderr.write(`${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main ?? process.argv[1] === import.meta.filename) {
  process.exitCode = await run(process.argv.slice(2), process.env);
}
