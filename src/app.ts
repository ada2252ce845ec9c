import { DatabaseUnavailableError } from './persistence/db.ts';
import { TokenReusedError } from './oidc/adapter.ts';
import { join } from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import compose from 'koa-compose';
import { bodyParser } from '@koa/bodyparser';
import type { Registry } from './registry.ts';
import { rootDir } from './registry.ts';
import { requestContext } from './http/request-context.ts';
import { securityHeaders } from './http/security-headers.ts';
import { errorHandler } from './http/error-handler.ts';
import { csrfProtection } from './http/csrf.ts';
import { pinOriginToIssuer, trustProxyHops } from './http/issuer-origin.ts';
import { metadataCaching } from './http/metadata-caching.ts';
import { deviceCookies } from './http/device-cookie.ts';
import { identityEncodingOnly, refuseNulInBody, refuseNulInUrl, validHostOnly } from './http/input-guards.ts';
import { formPageRedirects } from './http/form-pages.ts';
import { healthRoutes } from './routes/health.ts';
import { STATIC_PATHS, staticRoutes } from './routes/static.ts';
import { homeRoutes } from './routes/home.ts';
import { devMailboxRoutes } from './routes/dev-mailbox.ts';
import { loginRoutes } from './flows/login/routes.ts';
import { consentRoutes } from './flows/consent/routes.ts';
import { recoveryRoutes } from './flows/recovery/routes.ts';
import { registrationRoutes } from './flows/registration/routes.ts';
import { settingsRoutes } from './flows/settings/routes.ts';
import { profileApiRoutes } from './routes/profile-api.ts';
import { avatarUploadRoutes } from './flows/settings/avatar-upload.ts';
import { passwordExpiryStrategy } from './flows/login/password-expiry.ts';
import { secondStepStrategy } from './flows/login/second-step.ts';
import { trelloMigrationStrategy } from './flows/login/trello-migration.ts';
import { googleStrategy } from './flows/login/google.ts';
import { passwordStrategy } from './flows/login/password.ts';
import { connectorLinkHooks, connectorStrategy, samlEndpoints } from './flows/login/connector.ts';
import { createLoginCompletion, type CompletionHooks } from './flows/login/completion.ts';
import type { LoginStrategy } from './flows/login/strategy.ts';
import { pageRenderer } from './http/page.ts';
import { finishedInteractionPage } from './flows/login/finished.ts';
import { securityRoutes } from './flows/settings/security-routes.ts';
import { trelloSettingsRoutes } from './flows/settings/trello-routes.ts';
import { settingsKit } from './flows/settings/gate.ts';
import { adminRoutes } from './flows/admin/routes.ts';
import { connectorPages } from './flows/admin/connectors.ts';
import { securityApiRoutes } from './routes/security-api.ts';
import { trelloApiRoutes } from './routes/trello-api.ts';
import { organizationsApiRoutes, ORGANIZATIONS_API } from './routes/organizations-api/routes.ts';
import { apiErrors } from './routes/organizations-api/errors.ts';
import { ACCOUNT_CLIENT_ID } from './oidc/browser-session.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from './shared/errors.ts';

/**
 * Runs `middleware` only for paths under one of `prefixes`. The protocol endpoints (/token,
 * /auth, /me …) are the hot path: they skip our routers' route matching entirely.
 */
function under(prefixes: string[], middleware: Koa.Middleware): Koa.Middleware {
  return (ctx, next) => (prefixes.some((prefix) => ctx.path.startsWith(prefix)) ? middleware(ctx, next) : next());
}

/** Paths our own routers answer; everything else is oidc-provider's. */
const OWN_PATHS = ['/healthz', '/readyz', '/static/', '/dev/', '/api/', '/avatars/', '/interaction/', '/password/', '/account', '/login/', '/admin', '/saml/'];

/**
 * oidc-provider's endpoints that never store anything: no write batch around them. userinfo and
 * introspection read a token, its session and its grant: they get the adapter's request scope for
 * reading ahead (`reading`, src/oidc/adapter.ts); JWKS and discovery read nothing stored.
 */
const READ_ONLY_ENGINE_PATHS = new Map([['/me', true], ['/token/introspection', true], ['/jwks', false], ['/.well-known/openid-configuration', false]]);

/**
 * oidc-provider's endpoints as configured (src/oidc/provider.ts) and the methods each takes; the
 * engine leaves any other method unanswered, and the error handler answers 405 for it. The
 * authorization and logout endpoints take GET only: POST there needs the session cookie sent on
 * cross-site requests (SameSite=None; decision 0081). OPTIONS is the engine's CORS preflight.
 */
const ENGINE_METHODS = new Map<string, readonly string[]>([
  ['/auth', ['GET', 'HEAD']],
  ['/session/end', ['GET', 'HEAD']],
  ['/session/end/success', ['GET', 'HEAD']],
  ['/session/end/confirm', ['POST']],
  ['/token', ['POST', 'OPTIONS']],
  ['/token/introspection', ['POST', 'OPTIONS']],
  ['/token/revocation', ['POST', 'OPTIONS']],
  ['/request', ['POST', 'OPTIONS']],
  ['/me', ['GET', 'HEAD', 'POST', 'OPTIONS']],
  ['/jwks', ['GET', 'HEAD', 'OPTIONS']],
  ['/.well-known/openid-configuration', ['GET', 'HEAD', 'OPTIONS']],
]);

/** One route of ours: its methods and its path pattern (`:name` for a parameter). */
export interface RouteEntry {
  methods: string[];
  path: string;
}

/** The app, and the routes of our own routers (the property suite sends hostile input to each). */
export type LanyardApp = Koa & { readonly routeTable: readonly RouteEntry[] };

/**
 * The HTTP application: our middleware and routes in front, oidc-provider's endpoints mounted
 * behind them. Tests import this with a registry of their own.
 */
export function createApp(registry: Registry): LanyardApp {
  const { config, views, interactions, accounts, provider } = registry;
  const app = new Koa();
  // The client's address: TRUST_PROXY hops from the right of X-Forwarded-For. Absolute URLs and
  // the Secure flag of cookies: from ISSUER, never from Host or X-Forwarded-* (src/http/issuer-origin.ts).
  // The engine is a Koa app of its own (it builds contexts for its cookies): the same for it.
  for (const koa of [app, provider]) {
    trustProxyHops(koa, config.trustProxy);
    pinOriginToIssuer(koa, config.issuer);
  }
  app.silent = true; // errors are logged by our own handlers, with the request id
  // oidc-provider mounted at "/" runs on this app's context, so its signed cookies use these keys.
  app.keys = registry.cookieKeys;

  app.use(requestContext(registry.logger));
  app.use(securityHeaders({ hsts: new URL(config.issuer).protocol === 'https:' }));
  app.use(errorHandler(views, (path) => ENGINE_METHODS.get(path)));
  app.use(validHostOnly());
  app.use(refuseNulInUrl(OWN_PATHS));
  // Every router is served through routesOf, so the route table cannot miss one.
  const routers: Router[] = [];
  const routesOf = (router: Router) => {
    routers.push(router);
    return router.routes() as Koa.Middleware;
  };

  const open = new Router();
  open.use(healthRoutes(registry.db).routes());
  open.use(staticRoutes(join(rootDir, 'public')).routes());
  if (config.devMailbox && registry.mail.devMailbox) open.use(devMailboxRoutes(registry.mail.devMailbox, views).routes());
  app.use(under(['/healthz', '/readyz', '/static/', '/dev/', ...STATIC_PATHS], routesOf(open)));
  const home = homeRoutes({
    views,
    issuer: config.issuer,
    development: config.devMailbox || config.seedDemo
      ? {
          mailbox: Boolean(config.devMailbox && registry.mail.devMailbox),
          clients: async () => (await registry.clients.list())
            .filter((c) => c.client_id !== ACCOUNT_CLIENT_ID)
            .map((c) => ({ clientId: c.client_id, name: c.name, kind: c.kind, redirectUris: (c.metadata.redirect_uris as string[] | undefined) ?? [] })),
        }
      : undefined,
  });
  const homePage = routesOf(home);
  app.use((ctx, next) => (ctx.path === '/' ? homePage(ctx, next) : next()));

  // Our HTML forms: bodies parsed with tight limits (oidc-provider parses its own), CSRF checked.
  // One router per area of paths, each with the same layers in front: @koa/router tests a
  // request's path against every layer of the router it reaches (and its debug call allocates
  // for each), so a login's requests meet the 30-odd layers of the interaction pages instead of
  // all 130 of every form (issue 14: 56 KB of a login's allocations, sampled).
  const formsRouter = () => {
    const router = new Router();
    router.use(identityEncodingOnly());
    router.use(bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' }));
    router.use(refuseNulInBody());
    router.use(csrfProtection(registry.csrfKey));
    return router;
  };
  // /interaction/… and an upstream provider's one redirect URI under /login/.
  const interactionForms = formsRouter();
  interactionForms.use(finishedInteractionPage({ interactions, views }));
  const { throttle, events, twoStep } = registry;
  const devices = deviceCookies({ tag: throttle.deviceTag });
  const consent = consentRoutes({ interactions, accounts, release: registry.claimsRelease, views });
  interactionForms.use(consent.router.routes());
  // Login (docs/flows/login.md): strategies prove factors, the completion service decides and
  // finishes; the Trello strategy adds the link offer and the link waiting for the whole login.
  const { policy, loginFlows: flows } = registry;
  const linking = registry.trello.linking;
  const now = () => registry.clock.now();
  const trello = trelloMigrationStrategy({ accounts, linking, hasher: registry.hasher, throttle, policy, flows, codeKey: registry.codeKey, views });
  // Company identity providers (docs/flows/sso.md): one strategy, the protocol by connector kind.
  const ssoDeps = { ...registry.sso, accounts, throttle, events, linking, box: registry.box, views, issuer: config.issuer, now, testCallbackPath: (org: string, id: string) => `/admin/organizations/${encodeURIComponent(org)}/connectors/${encodeURIComponent(id)}/test/callback` };
  // Work waiting for the whole login: the Trello link, and an admin's company sign-in (decision 0086).
  const ssoLink = connectorLinkHooks(ssoDeps);
  const hooks: CompletionHooks = {
    interlude: trello.hooks.interlude,
    async beforeFinish(ctx, it, done) {
      await trello.hooks.beforeFinish?.(ctx, it, done);
      await ssoLink.beforeFinish?.(ctx, it, done);
    },
  };
  const completion = createLoginCompletion({ policy, flows, interactions, events, views, hooks, reopen: (account, meta) => registry.accountClosure.reopen(account, meta) });
  const loginPage = pageRenderer(views, { google: Boolean(registry.google) });
  const strategies: LoginStrategy[] = [
    passwordStrategy({ accounts, throttle, events, trello, linking, devices, hashing: registry.hasher, background: registry.background, page: loginPage, policy, step: registry.passwordStep }),
    trello.strategy,
    secondStepStrategy({ twoStep, policy, flows, throttle, events, views, box: registry.box, now }),
    passwordExpiryStrategy({ passwords: registry.passwordResets, policy, flows, sessions: registry.browserSessions, page: loginPage }),
  ];
  strategies.push(connectorStrategy(ssoDeps));
  // SAML connectors' metadata and assertion consumer: cross-site posts, outside the forms' CSRF.
  app.use(under(['/saml/'], routesOf(samlEndpoints({ ...ssoDeps, serviceProvider: registry.saml.serviceProvider }))));
  if (registry.google) strategies.push(googleStrategy({ google: registry.google, federated: registry.federated, linking, box: registry.box, views, issuer: config.issuer, now }));
  // Sign-up before login: its paths (/interaction/:uid/signup…) are more specific.
  interactionForms.use(registrationRoutes({ registration: registry.registration, interactions, views, background: registry.background, throttle, completion, minLength: config.passwordMinLength }).routes());
  for (const strategy of strategies) if (strategy.outside) interactionForms.use(strategy.outside.routes());
  const accountEmail = async (id: string) => (await accounts.findById(id))?.email;
  interactionForms.use(loginRoutes({ interactions, policy, completion, strategies, page: loginPage, renderConsent: consent.renderConsent, accountEmail }).routes());
  // /password/…: the reset by email.
  const recoveryForms = formsRouter();
  recoveryForms.use(recoveryRoutes({ resets: registry.passwordResets, views, background: registry.background, throttle, devices, linking, minLength: config.passwordMinLength }).routes());
  // /account…: the account's own pages.
  const accountForms = formsRouter();
  accountForms.use(trelloSettingsRoutes({ views, sessions: registry.browserSessions, accounts, linking, throttle, reauthentication: registry.reauthentication, box: registry.box, now: () => registry.clock.now() }).routes());
  const appNames = async () => new Map((await registry.clients.list()).map((c) => [c.client_id, c.name ?? c.client_id] as const));
  accountForms.use(securityRoutes({ views, sessions: registry.browserSessions, accounts, twoStep, events, throttle, reauthentication: registry.reauthentication, box: registry.box, now: () => registry.clock.now(), appNames }).routes());
  accountForms.use(settingsRoutes({
    issuer: config.issuer,
    views,
    sessions: registry.browserSessions,
    accounts,
    passwords: registry.passwordResets,
    accountSessions: registry.accountSessions,
    closure: registry.accountClosure,
    emailChanges: registry.emailChanges,
    management: registry.organizations.managedAccounts,
    events,
    throttle,
    reauthentication: registry.reauthentication,
    graceDays: config.accountDeletionGraceDays,
    minLength: config.passwordMinLength,
  }).routes());
  // Every change in the organization console — inviting or removing admins, domains, managed
  // accounts — needs a recent login at the account's level, not just a session (decision 0027):
  // one gate in front of all its forms, so no new form can forget it.
  const consoleKit = settingsKit({ views, sessions: registry.browserSessions, accounts });
  const consoleChange = compose([consoleKit.signedIn, consoleKit.privileged((ctx) => /^\/admin\/organizations\/[A-Za-z0-9_-]+/.exec(ctx.path)?.[0] ?? '/admin')]);
  // /admin…: the organization console.
  const adminForms = formsRouter();
  adminForms.use((ctx, next) => (ctx.method === 'POST' && ctx.path.startsWith('/admin/') ? consoleChange(ctx, next) : next()));
  adminForms.use(adminRoutes({ views, sessions: registry.browserSessions, accounts, organizations: registry.organizations.service, invitations: registry.organizations.invitations, managed: registry.organizations.managedAccounts, policies: registry.organizations.policies, box: registry.box, now: () => registry.clock.now(), pages: [connectorPages({ ...registry.sso, box: registry.box, issuer: config.issuer, now })] }).routes());
  const api = profileApiRoutes({ accounts, sessions: registry.browserSessions, avatars: registry.avatars, issuer: config.issuer, csrfKey: registry.csrfKey });
  app.use(under(['/api/', '/avatars/'], compose([routesOf(api), api.allowedMethods() as Koa.Middleware])));
  const securityApi = securityApiRoutes({ accounts, events, sessions: registry.browserSessions, interactions });
  const trelloApi = trelloApiRoutes({ linking: registry.trello.linking, accounts, sessions: registry.browserSessions, trelloClientId: config.trello.clientId });
  app.use(under(['/api/trello/'], compose([routesOf(trelloApi), trelloApi.allowedMethods() as Koa.Middleware])));
  app.use(under(['/api/security-events'], compose([routesOf(securityApi), securityApi.allowedMethods() as Koa.Middleware])));
  // The management API: bearer tokens with the organizations:manage scope, never cookies (decision 0032).
  const organizationsApi = organizationsApiRoutes({ sessions: registry.browserSessions, ...registry.organizations, organizations: registry.organizations.service });
  app.use(under([ORGANIZATIONS_API], compose([apiErrors(), routesOf(organizationsApi), organizationsApi.allowedMethods() as Koa.Middleware])));

  // Picture uploads parse their multipart body first, then check CSRF (the token is a form field).
  const avatarUpload = avatarUploadRoutes({ avatars: registry.avatars, sessions: registry.browserSessions, csrfKey: registry.csrfKey });
  app.use(under(['/account/avatar'], compose([routesOf(avatarUpload), formPageRedirects(avatarUpload, { page: '/account/profile' })])));

  const formRoutesOf = (router: Router) => compose([routesOf(router), formPageRedirects(router)]);
  const interactionFormRoutes = formRoutesOf(interactionForms);
  // The interaction pages' writes — the engine's interaction save, the audit row, a throttle
  // cleared — are stored as the request ends, in one statement (src/oidc/adapter.ts,
  // createWriteBehind; decision 0050): a password login's success is one commit. Should that
  // commit fail, nothing of it is stored and the answer is the 503 page, not the redirect or the
  // cookies the step had set for a login that did not happen.
  // The same holds when the engine's resume, run inside the form post (decision 0079), met the
  // outage itself and answered its own 5xx page: no cookie of the login that did not happen.
  const noLogin = (ctx: Koa.Context) => {
    ctx.remove('Location');
    ctx.remove('Set-Cookie');
  };
  const interactionPages: Koa.Middleware = async (ctx, next) => {
    let answered = false;
    try {
      await registry.payloadWrites.around(async () => {
        await interactionFormRoutes(ctx, next);
        answered = true;
      });
    } catch (err) {
      if (answered) noLogin(ctx);
      throw err;
    }
    if (ctx.status >= 500) noLogin(ctx);
  };
  app.use(under(['/interaction/', '/login/'], (ctx, next) => (ctx.path.startsWith('/interaction/') ? interactionPages(ctx, next) : interactionFormRoutes(ctx, next))));
  app.use(under(['/password/'], formRoutesOf(recoveryForms)));
  app.use(under(['/account'], formRoutesOf(accountForms)));
  app.use(under(['/admin'], formRoutesOf(adminForms)));

  app.use(metadataCaching({ discoveryPath: '/.well-known/openid-configuration', jwksPath: '/jwks', keyActivationDelaySeconds: config.keyActivationDelaySeconds }));
  // The engine's writes in one request are made together as it ends, before the response leaves
  // (src/oidc/adapter.ts, createWriteBehind): one commit for a login's end or a refresh. The
  // endpoints that only read (userinfo, introspection, JWKS, discovery) have nothing to batch and
  // skip it (issue 14: on /me and introspection it was a measurable share of Lanyard's own work);
  // should one of them ever write, its write goes straight to the database, as any write outside a batch.
  // Inside either scope, a token's lookup reads its session and grant ahead (one statement, not three).
  app.use(async (ctx, next) => {
    const readsTokens = READ_ONLY_ENGINE_PATHS.get(ctx.path);
    if (readsTokens !== undefined) return readsTokens ? registry.payloadWrites.reading(next) : next();
    try {
      await registry.payloadWrites.around(next);
    } catch (err) {
      // The code or refresh token was used by another request at the same moment: that request
      // won, nothing of this one was stored, and the grant is revoked (src/oidc/adapter.ts). The
      // answer is the one the engine gives a token used again (RFC 6749 §5.2 invalid_grant).
      if (err instanceof TokenReusedError && ctx.response.is('json')) {
        ctx.state.log?.warn({ model: err.model }, 'a code or refresh token was used twice at once: its grant is revoked');
        ctx.status = 400;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'invalid_grant', error_description: 'grant request is invalid' };
        return;
      }
      // The database went away as the request ended, after the engine had made its answer: that
      // answer never leaves. A protocol endpoint answering JSON (/token, /me, introspection …)
      // gets the protocol's error, as when the engine meets the outage itself (src/oidc/unavailable.ts).
      if (!(err instanceof DatabaseUnavailableError || (err as { cause?: unknown })?.cause instanceof DatabaseUnavailableError) || !ctx.response.is('json')) throw err;
      const message = err instanceof Error ? err.message : String(err);
      ctx.state.log?.warn({ err: { message } }, 'database unavailable while storing the engine’s writes');
      ctx.status = 503;
      ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable, retry later' };
    }
  });
  app.use(mount(provider));
  const routeTable = routers.flatMap((router) => router.stack)
    .filter((layer) => layer.methods.length > 0)
    .map((layer) => ({ methods: layer.methods.filter((m) => m !== 'HEAD'), path: String(layer.path) }));
  return Object.assign(app, { routeTable });
}
