import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import type Provider from 'oidc-provider';
import type { Config } from './config/schema.ts';
import { openingSecrets, resolveSecretKey } from './config/secret-key.ts';
import { systemClock, type Clock } from './shared/clock.ts';
import { createSecretBox, type SecretBox } from './shared/crypto.ts';
import { randomSecret } from './shared/ids.ts';
import type { Logger } from './shared/logger.ts';
import { openDatabase, timeoutsFrom, type Database } from './persistence/db.ts';
import { watchWrites } from './persistence/write-watch.ts';
import { createTokenAccounts } from './oidc/token-accounts.ts';
import { migrate } from './persistence/migrate.ts';
import { createAccountQueries, isTokenAccountTable, type AccountQueries } from './persistence/queries/accounts.ts';
import { createClientQueries } from './persistence/queries/clients.ts';
import { createInstanceSecretQueries } from './persistence/queries/instance-secrets.ts';
import { createOidcPayloadQueries, type OidcPayloadQueries } from './persistence/queries/oidc-payloads.ts';
import { createSigningKeyQueries } from './persistence/queries/signing-keys.ts';
import { createAccountService, type AccountService } from './identity/accounts.ts';
import { createPolicy, type Policy } from './policy/policy.ts';
import { createReauthentication, type Reauthentication } from './identity/reauthentication.ts';
import { createPasswordHasher, type PasswordHasher } from './identity/password-hasher.ts';
import { createPostgresAdapter, createWriteBehind, sweepExpiredPayloads, type WriteBehind } from './oidc/adapter.ts';
import { listenToProviderEvents } from './oidc/provider-events.ts';
import { createPasswordStep, type PasswordStep } from './oidc/password-step.ts';
import { createPasswordStepQueries } from './persistence/queries/password-step.ts';
import { createSweeper, type Sweeper } from './shared/sweeper.ts';
import { runEmbeddedUpkeep } from './persistence/embedded-upkeep.ts';
import { createSamlConnector, type SamlServiceProvider, type SeenAssertions } from './federation/saml/service-provider.ts';
import { createSeenAssertions } from './federation/saml/seen-assertions.ts';
import { createSamlAssertionSeenQueries } from './persistence/queries/saml-assertions-seen.ts';
import { createClientService, type ClientService } from './oidc/clients.ts';
import { createInteractions, type Interactions } from './oidc/interactions.ts';
import { createLoginFlows, type LoginFlows } from './oidc/login-flows.ts';
import { createLoginFlowQueries } from './persistence/queries/login-flows.ts';
import { createProvider } from './oidc/provider.ts';
import { createSigningKeyService, type SigningKeyService } from './oidc/signing-keys.ts';
import { createSigningKeyReload, type SigningKeyReload } from './oidc/signing-key-reload.ts';
import { createViews, type Views } from './http/views.ts';
import { providerPages } from './flows/logout/pages.ts';
import { createBackground, type Background } from './shared/background.ts';
import { createPasswordPolicy, type PasswordPolicy } from './identity/password-policy.ts';
import { createPasswordResetService, type PasswordResetService } from './identity/password-reset.ts';
import { createPasswordResetQueries } from './persistence/queries/password-reset-tokens.ts';
import { createRegistrationService, type RegistrationService } from './identity/registration.ts';
import { createSignupFlowQueries } from './persistence/queries/signup-flows.ts';
import { hmac } from './shared/crypto.ts';
import { createAccountActivityQueries, type AccountActivityQueries } from './persistence/queries/account-activity.ts';
import { ACCOUNT_CLIENT_ID, createBrowserSessions, type BrowserSessions } from './oidc/browser-session.ts';
import { createEmailChangeService, type EmailChangeService } from './identity/email-change.ts';
import { createEmailChangeQueries } from './persistence/queries/email-changes.ts';
import { createAvatarService, type AvatarService } from './identity/avatars.ts';
import { createAvatarQueries } from './persistence/queries/avatars.ts';
import { createAccountClosureService, type AccountClosureService } from './identity/account-closure.ts';
import { createAccountSessions, sweepEndedSessionActivity, type AccountSessions } from './oidc/account-sessions.ts';
import { createMailOutboxQueries, type MailOutboxQueries } from './persistence/queries/mail-outbox.ts';
import { createMailRenderer } from './mail/templates.ts';
import { createOutbox, type Outbox } from './mail/outbox.ts';
import { createDevMailbox, createSmtpTransport, type DevMailbox } from './mail/transport.ts';
import { createMailDelivery, createOutboxUpkeep, sweepSentMail, type MailDelivery } from './mail/delivery.ts';
import { createSecurityEvents, type SecurityEvents } from './identity/security-events.ts';
import { createSecurityEventQueries } from './persistence/queries/security-events.ts';
import { createThrottle, type Throttle } from './identity/throttle.ts';
import { createThrottleQueries } from './persistence/queries/throttles.ts';
import { createTwoStepService, type TwoStepService } from './identity/two-step.ts';
import { createTwoStepQueries } from './persistence/queries/two-step.ts';
import { createTrelloMemberQueries, type TrelloMemberQueries } from './persistence/queries/trello-members.ts';
import { createTrelloLinkEventQueries, type TrelloLinkEventQueries } from './persistence/queries/trello-link-events.ts';
import { createRetiredEmailQueries } from './persistence/queries/retired-emails.ts';
import { createAccountIdentityQueries, type AccountIdentityQueries } from './persistence/queries/account-identities.ts';
import { createTrelloLinking, type TrelloLinking } from './legacy-trello/linking.ts';
import { createBulkMigration, type BulkMigration } from './legacy-trello/bulk-migration.ts';
import { createTrelloBulkLinkQueries } from './persistence/queries/trello-bulk-links.ts';
import { createLinkWebhook, type LinkWebhook } from './legacy-trello/link-webhook.ts';
import { createFederatedLogin, type FederatedLogin } from './federation/federated-login.ts';
import { createGoogleClient, type GoogleClient } from './federation/google.ts';
import { createClaimsRelease, type ClaimsRelease } from './identity/claims-release.ts';
import { createOrganizationQueries } from './persistence/queries/organizations.ts';
import { createOrganizationDomainQueries } from './persistence/queries/organization-domains.ts';
import { createAccountManagerQueries, type AccountManagerQueries } from './persistence/queries/account-managers.ts';
import { createDomainVerifier } from './organizations/domain-verification.ts';
import { createRelease } from './organizations/release.ts';
import { createOrganizationService, type OrganizationService } from './organizations/organizations.ts';
import { createDomainRecheck, type DomainRecheck } from './organizations/domain-recheck.ts';
import { createManagedAccounts, type ManagedAccounts } from './organizations/managed-accounts.ts';
import { createOrganizationEventQueries } from './persistence/queries/organization-events.ts';
import { createAdminAudit } from './organizations/admin-audit.ts';
import { createInvitationService, type InvitationService } from './organizations/invitations.ts';
import { createConnectorQueries } from './persistence/queries/connectors.ts';
import { createConnectors, type Connectors } from './federation/connectors.ts';
import { createConnectorLogin, type ConnectorLogin } from './federation/connector-login.ts';
import { createOidcProtocol, createSamlProtocol, type ConnectorProtocol } from './federation/connector-protocol.ts';
import { oidcCallbackPath } from './flows/login/connector.ts';
import { upstreamRulesOf } from './federation/upstream-fetch.ts';
import { createAuthenticationPolicies, type AuthenticationPolicies } from './organizations/authentication-policies.ts';
import { createAuthenticationPolicyQueries } from './persistence/queries/authentication-policies.ts';

/**
 * The composition root: builds queries → services → provider once, in dependency order. Nothing
 * else wires components together, and nothing here is global, so two registries (two instances
 * of the server) can live in one process — the tests rely on it.
 */
export interface Registry {
  config: Config;
  logger: Logger;
  clock: Clock;
  db: Database;
  box: SecretBox;
  views: Views;
  accounts: AccountService;
  accountQueries: AccountQueries;
  clients: ClientService;
  signingKeys: SigningKeyService;
  /** Re-reads the signing keys every SIGNING_KEY_REFRESH_SECONDS (a rotation made by any instance). */
  signingKeyReload: SigningKeyReload;
  oidcPayloads: OidcPayloadQueries;
  /** The engine's writes of one request made together as it ends (src/app.ts wraps the engine's routes in it). */
  payloadWrites: WriteBehind;
  provider: Provider;
  interactions: Interactions;
  /** Each login interaction's state between requests (src/oidc/login-flows.ts). */
  loginFlows: LoginFlows;
  /** The password step's reads and throttle reservation in one statement (src/oidc/password-step.ts). */
  passwordStep: PasswordStep;
  background: Background;
  passwordPolicy: PasswordPolicy;
  passwordResets: PasswordResetService;
  registration: RegistrationService;
  accountSessions: AccountSessions;
  browserSessions: BrowserSessions;
  accountClosure: AccountClosureService;
  emailChanges: EmailChangeService;
  avatars: AvatarService;
  activity: AccountActivityQueries;
  events: SecurityEvents;
  throttle: Throttle;
  twoStep: TwoStepService;
  /** The one decision point for "may this account sign in, and how" (src/policy/). */
  policy: Policy;
  /** Privileged sessions: a sensitive change in settings needs a recent login (decision 0027). */
  reauthentication: Reauthentication;
  hasher: PasswordHasher;
  /** What relying parties receive about an account (tokens and the consent page). */
  claimsRelease: ClaimsRelease;
  trello: {
    members: TrelloMemberQueries;
    linkEvents: TrelloLinkEventQueries;
    linking: TrelloLinking;
    bulk: BulkMigration;
    webhook: LinkWebhook;
  };
  federated: FederatedLogin;
  /** Organizations, their verified domains and the accounts they manage (src/organizations/). */
  organizations: {
    service: OrganizationService;
    /** The periodic re-check of verified domains (started with the other workers). */
    recheck: DomainRecheck;
    managers: AccountManagerQueries;
    /** Claiming, who manages an account, and the admins' actions on managed accounts. */
    managedAccounts: ManagedAccounts;
    /** Admin invitations by email (the console's admins page). */
    invitations: InvitationService;
    /** Authentication policies and who follows which (the console's policies pages). */
    policies: AuthenticationPolicies;
  };
  /** Upstream identities (Google, later company SSO) linked to accounts. */
  accountIdentities: AccountIdentityQueries;
  /** Present when GOOGLE_ISSUER, GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are set. */
  google: GoogleClient | undefined;
  /**
   * The SAML 2.0 service provider of company connectors (src/federation/saml/, decision 0036):
   * `serviceProvider.start/finish/metadata` for a connector, and the one-time-use store of
   * assertion ids it writes to (swept with the other expired rows).
   */
  saml: { serviceProvider: SamlServiceProvider; seen: SeenAssertions };
  /**
   * Company identity providers (issue 13, docs/flows/sso.md): the connectors service (login's view,
   * console actions, health line), how an upstream identity resolves to an account, and the
   * protocol of each kind the connector strategy dispatches to.
   */
  sso: { connectors: Connectors; resolver: ConnectorLogin; protocols: Record<'oidc' | 'saml', ConnectorProtocol> };
  mail: {
    outbox: Outbox;
    delivery: MailDelivery;
    queries: MailOutboxQueries;
    /** Present when no SMTP_URL is configured: what /dev/mailbox shows. */
    devMailbox: DevMailbox | undefined;
  };
  /** The background clean-up (SWEEP_INTERVAL_SECONDS); tests run one round with `sweepOnce()`. */
  sweeper: Sweeper;
  /** Cookie-signing keys, newest first (the engine's cookies are set through our Koa app). */
  cookieKeys: string[];
  /** Key for keyed hashes of one-time codes, derived from SECRET_KEY. */
  codeKey: Buffer;
  /** Key for CSRF tokens, derived from the newest cookie key. */
  csrfKey: Buffer;
  /** Stops background work; closes the database when the registry opened it. */
  close(): Promise<void>;
}

export interface RegistryOptions {
  logger: Logger;
  clock?: Clock;
  /** An already open (and migrated) database, shared by tests; the registry will not close it. */
  db?: Database;
  /** Apply migrations at start (the default); the CLI's `migrate` does it explicitly. */
  migrate?: boolean;
  /**
   * Run the background work from this process: the mail worker, the Trello webhook worker, the
   * domain re-checks and the sweeper's timer (the default, for the server). The CLI passes false:
   * a command only queues, and the server's workers deliver and sweep — a sweeper round in the
   * middle of a long import would vacuum the tables it is filling.
   */
  deliver?: boolean;
}

export const rootDir = join(import.meta.dirname, '..');

const COOKIE_KEYS_SECRET = 'cookie_keys';

/**
 * A key for keyed hashes (verification and recovery codes, throttle subjects), derived from
 * SECRET_KEY the first time and kept sealed in the database from then on: stored hashes must
 * stay valid when SECRET_KEY rotates (docs/decisions/0017-secret-key-rotation.md).
 */
async function derivedKey(label: string, secretKey: Buffer, box: SecretBox, db: Database): Promise<Buffer> {
  const name = `derived:${label}`;
  const secrets = createInstanceSecretQueries(db);
  const sealed = (await secrets.find(name)) ?? (await secrets.insertOrGet(name, box.seal(hmac(secretKey, label), name)));
  return Buffer.from(box.open(sealed, name), 'base64url');
}

async function cookieKeysFor(config: Config, box: SecretBox, db: Database): Promise<string[]> {
  if (config.cookieKeys?.length) return config.cookieKeys;
  // Generated once and shared by every instance through the database (first writer wins).
  const secrets = createInstanceSecretQueries(db);
  const candidate = box.seal(JSON.stringify([randomSecret(32)]), COOKIE_KEYS_SECRET);
  const sealed = (await secrets.find(COOKIE_KEYS_SECRET)) ?? (await secrets.insertOrGet(COOKIE_KEYS_SECRET, candidate));
  return JSON.parse(box.open(sealed, COOKIE_KEYS_SECRET)) as string[];
}

/**
 * Password hashes running at once: as configured, or one per CPU and one more, leaving one thread
 * of libuv's pool free for signing, files and DNS (decisions 0051, 0056). The one more keeps every
 * core hashing while the event loop hands a finished hash's place to the next: with exactly one
 * per CPU a core idled for as long as the loop took to get to it.
 */
export function hashThreads(config: Pick<Config, 'passwordHashThreads' | 'threadPoolSize'>, cpus = availableParallelism()): number {
  return config.passwordHashThreads || Math.max(1, Math.min(cpus + 1, config.threadPoolSize - 1));
}

export async function createRegistry(config: Config, options: RegistryOptions): Promise<Registry> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const ownsDb = !options.db;
  // Writes this process makes to what a token's account row is made of drop the token
  // endpoints' account cache at once (src/oidc/token-accounts.ts; set up below).
  let tokenAccountsChanged = () => {};
  const db = watchWrites(
    options.db ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl ? undefined : config.dataDir, sharedBuffersMb: config.embeddedSharedBuffersMb, timeouts: timeoutsFrom(config.database), preparedStatements: config.database.preparedStatements })),
    isTokenAccountTable,
    () => tokenAccountsChanged(),
  );
  let sweeper: Sweeper | undefined;

  try {
    if (options.migrate !== false) {
      const applied = await migrate(db);
      if (applied.length) logger.info({ applied }, 'migrations applied');
    }

    const secretKey = resolveSecretKey(config, (message) => logger.warn(message));
    const box = createSecretBox(secretKey, config.secretKeysPrevious ?? []);
    const signingKeys = createSigningKeyService({ keys: createSigningKeyQueries(db), box, clock });
    // Everything sealed that start-up needs is opened here: a wrong key stops the process with one line.
    const { jwks, cookieKeys, codeKey, throttleKey, pictureKey } = await openingSecrets(box, async () => {
      const createdKeys = await signingKeys.ensure();
      if (createdKeys.length) logger.info({ kids: createdKeys }, 'signing keys generated');
      return {
        jwks: await signingKeys.loadJwks(),
        cookieKeys: await cookieKeysFor(config, box, db),
        // Separate keys for keyed hashes, so that one secret stays the only one to keep.
        codeKey: await derivedKey('lanyard:verification-codes', secretKey, box, db),
        throttleKey: await derivedKey('lanyard:throttle-keys', secretKey, box, db),
        pictureKey: await derivedKey('lanyard:picture-addresses', secretKey, box, db),
      };
    });

    const hasher = createPasswordHasher(config.argon2, config.passwordHashConcurrency, hashThreads(config), { nice: config.workerPoolNice });
    const accountQueries = createAccountQueries(db);
    const accounts = createAccountService({ accounts: accountQueries, hasher, clock });
    const policy = createPolicy({ accounts: accountQueries, domains: createOrganizationDomainQueries(db), clock });
    const tokenAccounts = createTokenAccounts({ load: (id: string) => policy.loadForTokens(id), ttlMs: config.accountCacheMilliseconds });
    tokenAccountsChanged = () => tokenAccounts.invalidate();
    const reauthentication = createReauthentication({ policy, hasher });
    const passwordPolicy = createPasswordPolicy({ minLength: config.passwordMinLength });
    const background = createBackground((name, err) => logger.error({ task: name, err: { message: (err as Error).message } }, 'background task failed'));
    const oidcPayloads = createOidcPayloadQueries(db);
    const payloadWrites = createWriteBehind(oidcPayloads, db);
    // The audit row and a throttle's clearing join the request's batch when one is open (our
    // interaction pages and the engine's routes, src/app.ts): one commit at a login's end.
    const events = createSecurityEvents({ queries: createSecurityEventQueries(db), clock, defer: payloadWrites.defer });
    const throttle = createThrottle({
      queries: createThrottleQueries(db),
      clock,
      key: throttleKey,
      settings: config.throttle,
      defer: payloadWrites.defer,
    });
    const views = createViews(join(rootDir, 'views'), { cache: config.env !== 'development', productName: 'Lanyard' });

    const trelloMembers = createTrelloMemberQueries(db);
    const trelloLinkEvents = createTrelloLinkEventQueries(db);
    const retiredEmails = createRetiredEmailQueries(db);
    const accountIdentities = createAccountIdentityQueries(db);
    const emailChangeQueries = createEmailChangeQueries(db);
    const claimsRelease = createClaimsRelease({ issuer: config.issuer, pictureKey, trelloClientId: config.trello.clientId, trelloMemberId: (accountId) => trelloMembers.memberIdOf(accountId) });
    const activity = createAccountActivityQueries(db);
    const lastUsed = async (sessionUid: string) => {
      const seen = await activity.lastSeen(sessionUid);
      return seen ? Math.floor(seen.getTime() / 1000) : undefined;
    };
    let provider: Provider | undefined;
    const clients = createClientService({
      clients: createClientQueries(db),
      box,
      clock,
      validate: async (metadata) => { await provider!.Client.validate(metadata); },
      cacheSeconds: config.clientCacheSeconds,
    });
    provider = createProvider({
      config,
      logger,
      jwks,
      cookieKeys,
      adapter: createPostgresAdapter(oidcPayloads, clock, payloadWrites),
      findClient: (id) => clients.findMetadata(id),
      findAccount: (id) => tokenAccounts.get(id),
      decide: (input) => policy.decide(input),
      release: claimsRelease,
      sessionLastUsed: lastUsed,
      pages: providerPages(views),
    });

    const signingKeyReload = createSigningKeyReload({ provider, signingKeys, logger, initial: jwks, intervalSeconds: config.signingKeyRefreshSeconds });

    const mailQueries = createMailOutboxQueries(db);
    const devMailbox = config.smtpUrl ? undefined : createDevMailbox((line, message) => logger.info(line, message));
    const mailUpkeep = createOutboxUpkeep({ queries: mailQueries, every: config.mailVacuumEvery, logger });
    const delivery = createMailDelivery({
      upkeep: mailUpkeep,
      queries: mailQueries,
      box,
      transport: config.smtpUrl ? createSmtpTransport(config.smtpUrl) : devMailbox!,
      clock,
      logger,
      from: config.mailFrom,
      messageIdDomain: new URL(config.issuer).hostname,
      maxAttempts: config.mailMaxAttempts,
    });
    const outbox = createOutbox({
      queries: mailQueries,
      box,
      render: createMailRenderer(views, config.issuer),
      clock,
      // With a running worker, a committed message goes out at once instead of at the next poll.
      onEnqueued: options.deliver !== false && config.mailPollSeconds > 0
        ? () => { delivery.deliverDue().catch((err: unknown) => logger.error({ err: { message: (err as Error).message } }, 'mail worker error')); }
        : undefined,
    });
    if (options.deliver !== false) delivery.start(config.mailPollSeconds);

    const loginFlowQueries = createLoginFlowQueries(db);
    const accountSessions = createAccountSessions({ provider, db, queries: oidcPayloads, activity, loginFlows: loginFlowQueries, clock, logger });
    const twoStepQueries = createTwoStepQueries(db);
    const accountManagers = createAccountManagerQueries(db);
    const policyQueries = createAuthenticationPolicyQueries(db);
    const accountClosure = createAccountClosureService({
      db,
      accounts: accountQueries,
      reauthentication,
      outbox,
      clock,
      issuer: config.issuer,
      graceDays: config.accountDeletionGraceDays,
      signOutEverywhere: (accountId) => accountSessions.endAll(accountId),
      forgetters: [activity, twoStepQueries, accountIdentities, emailChangeQueries, retiredEmails, trelloMembers, policyQueries, accountManagers, events],
      logger,
      events,
      decisions: policy,
    });
    await clients.ensureInternal(ACCOUNT_CLIENT_ID, 'Lanyard account settings', `${config.issuer}/account/callback`);
    listenToProviderEvents({ provider, activity, events, clock, logger, defer: payloadWrites.defer });
    const trelloLinking = createTrelloLinking({ db, trelloMembers, retiredEmails, identities: accountIdentities, linkEvents: trelloLinkEvents, accounts: accountQueries, hasher, outbox, events, clock, issuer: config.issuer });
    const resetTokens = createPasswordResetQueries(db);
    const linkWebhook = createLinkWebhook({
      linkEvents: trelloLinkEvents,
      retiredEmails,
      clock,
      logger,
      url: config.trello.webhookUrl,
      secret: async () => (await clients.findMetadata(config.trello.clientId))?.client_secret as string | undefined,
      maxAttempts: config.mailMaxAttempts,
    });
    const passwordResets = createPasswordResetService({
      db,
      accounts: accountQueries,
      tokens: resetTokens,
      hasher,
      policy: passwordPolicy,
      outbox,
      clock,
      issuer: config.issuer,
      ttlSeconds: config.passwordResetTtl,
      signOutEverywhere: (accountId, keepSessionUid) => accountSessions.endAll(accountId, { keepSessionUid }),
      events,
      decisions: policy,
      reauthentication,
    });
    const registration = createRegistrationService({
      db,
      accounts: accountQueries,
      flows: createSignupFlowQueries(db),
      hasher,
      policy: passwordPolicy,
      outbox,
      clock,
      issuer: config.issuer,
      codeKey,
      ttlSeconds: config.signupCodeTtl,
      decisions: policy,
    });

    const organizationQueries = createOrganizationQueries(db);
    const organizationDomains = createOrganizationDomainQueries(db);
    const domainHttp = { httpScheme: config.domainVerification.httpScheme, httpPort: config.domainVerification.httpPort };
    const domainVerifier = createDomainVerifier({
      dnsServers: config.dnsServers,
      ...domainHttp,
      timeoutMs: config.domainVerification.timeoutSeconds * 1000,
      // A domain is anyone's choice (any account may create an organization), as a connector's
      // issuer is: its file check follows the upstreams' rule, refused in production, not the
      // operator's relying parties' (ALLOW_PRIVATE_NETWORK_CALLS, for back-channel logout).
      allowPrivateNetwork: config.allowPrivateNetworkUpstreams,
    });
    const domainRecheck = createDomainRecheck({
      db,
      domains: organizationDomains,
      organizations: organizationQueries,
      verifier: domainVerifier,
      outbox,
      clock,
      logger,
      intervalSeconds: config.domainVerification.recheckIntervalSeconds,
      http: domainHttp,
    });

    const loginFlows = createLoginFlows({ queries: loginFlowQueries, clock, logger });
    const adminAudit = createAdminAudit({ queries: createOrganizationEventQueries(db), clock });
    const release = createRelease({ managers: accountManagers, outbox, events, issuer: config.issuer });
    const organizationService = createOrganizationService({ db, accounts: accountQueries, organizations: organizationQueries, domains: organizationDomains, verifier: domainVerifier, managers: accountManagers, audit: adminAudit, clock, http: domainHttp, throttle, organizationsPerAccount: config.organizationsPerAccount, events, release });
    const managedAccounts = createManagedAccounts({
      db,
      accounts: accountQueries,
      managers: accountManagers,
      organizations: organizationQueries,
      domains: organizationDomains,
      authorize: organizationService.authorize,
      outbox,
      audit: adminAudit,
      events,
      clock,
      issuer: config.issuer,
      signOutEverywhere: (accountId) => accountSessions.endAll(accountId),
    });

    const seenAssertions = createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock });
    const samlServiceProvider = createSamlConnector({ issuer: config.issuer, clock: () => clock.now(), seen: seenAssertions });

    const connectors = createConnectors({ db, queries: createConnectorQueries(db), domains: organizationDomains, box, clock, authorize: organizationService.authorize, audit: adminAudit, upstreams: upstreamRulesOf(config) });
    const sso = {
      connectors,
      resolver: createConnectorLogin({ db, accounts: accountQueries, identities: accountIdentities, retiredEmails, trelloMembers, linking: trelloLinking, events, clock, managedBy: async (organizationId, accountId) => (await accountManagers.managedBy(organizationId, accountId)) !== undefined,
        ownProofNeeded: (account) => organizationQueries.isAdminOfAny(account.id),
      }),
      protocols: {
        oidc: createOidcProtocol({ redirectUri: (id) => `${config.issuer}${oidcCallbackPath(id)}`, upstreams: upstreamRulesOf(config), now: () => clock.now() }),
        saml: createSamlProtocol(samlServiceProvider),
      },
    };

    sweeper = createSweeper({
      logger,
      tasks: [
        { name: 'expired protocol rows', run: () => sweepExpiredPayloads({ queries: oidcPayloads, clock, logger, batch: config.sweepBatchSize, maxRows: config.sweepMaxRows }) },
        { name: 'records of ended sessions', run: () => sweepEndedSessionActivity({ activity, clock, batch: config.sweepBatchSize, maxRows: config.sweepMaxRows }) },
        { name: 'expired login flows', run: () => loginFlows.sweep() },
        { name: 'expired email change links', run: () => emailChangeQueries.sweep(new Date(clock.now())) },
        { name: 'used SAML assertion ids', run: () => seenAssertions.sweep() },
        { name: 'throttle counters', run: () => throttle.sweep() },
        { name: 'closed accounts', run: () => accountClosure.sweep() },
        { name: 'sent mail records', run: () => sweepSentMail({ queries: mailQueries, upkeep: mailUpkeep, clock, retentionDays: config.mailSentRetentionDays }) },
        // Last, after the deletions above: PGlite has no autovacuum (decision 0064). A server has its own.
        ...(db.engine === 'pglite' ? [{ name: 'embedded engine upkeep (vacuum, analyze)', run: () => runEmbeddedUpkeep(db, logger) }] : []),
      ],
    });
    if (options.deliver !== false) sweeper.start(config.sweepIntervalSeconds);

    // Started last: nothing below can fail and leave its timer running.
    if (options.deliver !== false) linkWebhook.start(config.mailPollSeconds);
    if (options.deliver !== false) domainRecheck.start();
    signingKeyReload.start();

    return {
      config,
      logger,
      clock,
      db,
      box,
      views,
      accounts,
      policy,
      reauthentication,
      accountQueries,
      clients,
      signingKeys,
      signingKeyReload,
      oidcPayloads,
      payloadWrites,
      provider,
      interactions: createInteractions(provider),
      loginFlows,
      passwordStep: createPasswordStep({ queries: createPasswordStepQueries(db), policy, flows: loginFlows }),
      background,
      passwordPolicy,
      passwordResets,
      registration,
      accountSessions,
      browserSessions: createBrowserSessions(provider, policy, { lastUsed, used: (sessionUid) => activity.seen(sessionUid, new Date(clock.now())) }),
      accountClosure,
      avatars: createAvatarService({ db, avatars: createAvatarQueries(db), issuer: config.issuer, pictureKey }),
      emailChanges: createEmailChangeService({
        db,
        accounts: accountQueries,
        changes: emailChangeQueries,
        reauthentication,
        outbox,
        clock,
        issuer: config.issuer,
        ttlSeconds: config.passwordResetTtl,
        decisions: policy,
        events,
        undo: {
          twoStep: twoStepQueries,
          trelloMembers,
          identities: accountIdentities,
          managers: accountManagers,
          resetTokens,
          issueResetLink: passwordResets.issueLink,
          signOutEverywhere: (accountId) => accountSessions.endAll(accountId),
        },
      }),
      activity,
      events,
      throttle,
      hasher,
      claimsRelease,
      twoStep: createTwoStepService({
        db,
        queries: twoStepQueries,
        box,
        reauthentication,
        outbox,
        events,
        clock,
        issuer: config.issuer,
        codeKey,
        productName: 'Lanyard',
      }),
      trello: {
        members: trelloMembers,
        linkEvents: trelloLinkEvents,
        linking: trelloLinking,
        bulk: createBulkMigration({ db, bulkLinks: createTrelloBulkLinkQueries(), linking: trelloLinking, trelloMembers, resetTokens, outbox, clock, issuer: config.issuer, decisions: policy }),
        webhook: linkWebhook,
      },
      accountIdentities,
      saml: { serviceProvider: samlServiceProvider, seen: seenAssertions },
      sso,
      organizations: {
        service: organizationService,
        recheck: domainRecheck,
        managers: accountManagers,
        managedAccounts,
        policies: createAuthenticationPolicies({ db, queries: policyQueries, managers: accountManagers, isAdmin: (tx, organizationId, accountId) => organizationQueries.isAdmin(tx, organizationId, accountId), authorize: organizationService.authorize, audit: adminAudit, clock, signOutEverywhere: (accountId) => accountSessions.endAll(accountId) }),
        invitations: createInvitationService({ db, accounts: accountQueries, organizations: organizationQueries, service: organizationService, audit: adminAudit, outbox, clock, codeKey, issuer: config.issuer, ttlSeconds: config.organizationInvitationTtl, throttle }),
      },
      federated: createFederatedLogin({ db, accounts: accountQueries, identities: accountIdentities, retiredEmails, trelloMembers, linking: trelloLinking, events, clock }),
      google: config.google.issuer && config.google.clientId && config.google.clientSecret
        ? createGoogleClient({ issuer: config.google.issuer, clientId: config.google.clientId, clientSecret: config.google.clientSecret, redirectUri: `${config.issuer}/login/google/callback` })
        : undefined,
      mail: { outbox, delivery, queries: mailQueries, devMailbox },
      sweeper,
      cookieKeys,
      codeKey,
      csrfKey: Buffer.from(`csrf:${cookieKeys[0]}`),
      async close() {
        sweeper?.stop();
        signingKeyReload.stop();
        await background.idle();
        await delivery.stop();
        await linkWebhook.stop();
        await domainRecheck.stop();
        if (ownsDb) await db.close();
      },
    };
  } catch (err) {
    sweeper?.stop();
    if (ownsDb) await db.close().catch(() => {});
    throw err;
  }
}
