import Router from '@koa/router';
import type { Context } from 'koa';
import { isSamlRefusal } from '../../federation/saml/refusal.ts';
import type { SamlServiceProvider } from '../../federation/saml/service-provider.ts';
import { readSamlPost, samlMetadataRoutes, samlPostBody } from '../../routes/saml.ts';
import type { ConnectorLogin } from '../../federation/connector-login.ts';
import type { ConnectorIdentity, ConnectorProtocol, PendingChecks } from '../../federation/connector-protocol.ts';
import type { Connectors, LoginConnector } from '../../federation/connectors.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import { connectorAmr } from '../../policy/policy.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { randomSecret } from '../../shared/ids.ts';
import { messageFor, type PageError } from '../../http/messages.ts';
import { pageRenderer } from '../../http/page.ts';
import { requestMeta } from '../../http/request-meta.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import type { Views } from '../../http/views.ts';
import type { LoginStrategy } from './strategy.ts';
import type { AccountService } from '../../identity/accounts.ts';
import type { Throttle } from '../../identity/throttle.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { CompletionHooks } from './completion.ts';
import { parseForm } from '../../http/validate.ts';
import { unlessBusy } from '../busy.ts';
import { throttled } from '../throttled.ts';
import { passwordOnlyInput } from './schema.ts';
import { networkFailureOf, upstreamFailureOf } from '../../federation/upstream-fetch.ts';

/**
 * Sign-in through a company's identity provider: the connector strategy (docs/flows/sso.md,
 * decisions 0033 and 0034). One strategy for every connector; `connector.kind` picks the
 * protocol (`ConnectorProtocol`: OpenID Connect or SAML 2.0).
 *
 * 1. GET /interaction/:uid/sso/:connectorId — where the identifier step, the password step and
 *    the completion service send an address whose policy requires the connector. What must stay
 *    bound to this browser (OIDC state, nonce and PKCE verifier; the SAML request id) goes into a
 *    cookie sealed with SECRET_KEY (HttpOnly, SameSite=Lax, ten minutes), then the browser goes
 *    upstream — asked for a fresh sign-in when this login re-authenticates someone, for one no
 *    older than the relying party's max_age when it sent one.
 * 2. GET /login/sso/:connectorId/callback — the one redirect URI registered upstream (OIDC). The
 *    engine's interaction cookie is scoped to /interaction/<uid>, so this only bounces the
 *    browser, with the same query, into the interaction (or to the console's test page).
 * 3. GET /interaction/:uid/sso/:connectorId/callback — the response checked by the protocol
 *    (openid-client: state, iss, PKCE, nonce, ID token signature and audience), the account
 *    resolved (src/federation/connector-login.ts: link, just-in-time creation, refusals), and the
 *    factor `connector:<id>` reported to the completion service with amr ["fed"] (+ "mfa" when
 *    the upstream says so) and the connector's own amr value, which carries the connector into
 *    the session's and every grant's provenance.
 *
 * An upstream that cannot be reached, or answers with something we refuse, gives the person a
 * page that says so and the admin a health line on the console (`connectors.last_failure`).
 */
const COOKIE = 'lanyard.sso';
const SEAL = 'sso_login';

/**
 * `since`: set when the login re-authenticates someone already signed in here (seconds): the
 * upstream's sign-in must be at least that recent. `test`: a console test login by this admin
 * (no sign-in; src/flows/admin/connectors.ts).
 */
export interface PendingSso {
  uid?: string;
  connectorId: string;
  pending: PendingChecks;
  since?: number;
  test?: { organizationId: string; accountId: string };
}

/** Clock skew allowed between us and the upstream when checking `auth_time` (seconds). */
export const AUTH_TIME_SKEW_SECONDS = 60;

/** The sealed cookie holding a pending connector login (shared with the console's test login). */
export function ssoPendingCookie(box: SecretBox, now: () => number) {
  const cookie = sealedCookie<PendingSso>(box, now, { name: COOKIE, ttlSeconds: 600 });
  return {
    set: (ctx: Context, value: PendingSso) => cookie.set(ctx, '/', SEAL, value),
    get: (ctx: Context) => cookie.get(ctx, SEAL),
    clear: (ctx: Context) => cookie.clear(ctx, '/'),
  };
}

/**
 * What a SAML response proved, carried from the ACS continuation (which holds no interaction
 * cookie: it is outside /interaction/<uid>) into the interaction's callback step by a 303. Sealed,
 * two minutes, bound to the interaction (or the console test) it was started for.
 */
export interface CarriedIdentity {
  uid?: string;
  connectorId: string;
  identity: ConnectorIdentity;
  since?: number;
  test?: PendingSso['test'];
}

export function ssoIdentityCookie(box: SecretBox, now: () => number) {
  const cookie = sealedCookie<CarriedIdentity>(box, now, { name: 'lanyard.sso_identity', ttlSeconds: 120 });
  return {
    set: (ctx: Context, value: CarriedIdentity) => cookie.set(ctx, '/', 'sso_identity', value),
    get: (ctx: Context) => cookie.get(ctx, 'sso_identity'),
    clear: (ctx: Context) => cookie.clear(ctx, '/'),
  };
}

/** The redirect URI of an OIDC connector, registered at the upstream (the console shows it). */
export const oidcCallbackPath = (connectorId: string) => `/login/sso/${encodeURIComponent(connectorId)}/callback`;

/**
 * One link of an error chain as the console shows it. openid-client's cause for a refused token
 * request is the upstream's JSON error (RFC 6749 §5.2), not an Error: its `error` and
 * `error_description` say what went wrong ("invalid_client": the client ID or secret).
 */
function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object') {
    const { error, error_description: description } = e as { error?: unknown; error_description?: unknown };
    if (typeof error === 'string') {
      const hint = error === 'invalid_client' ? ' (the identity provider refused the client ID or secret)' : '';
      return `${error}${typeof description === 'string' ? ` — ${description}` : ''}${hint}`;
    }
    try {
      return JSON.stringify(e);
    } catch {
      return 'unreadable error';
    }
  }
  return String(e);
}

/**
 * A short reason for the console's health line: the error's message, without anything it quotes
 * at length — or, when the network failed the request, only its category (upstream-fetch.ts):
 * the raw error would tell an admin what listens on the addresses the upstream's name points at.
 */
export function healthReason(prefix: string, err: unknown): string {
  const network = networkFailureOf(err);
  if (network) return `${prefix}: ${network}`;
  // openid-client wraps the precise reason ("unexpected iss…") as the cause of a generic one.
  const messages: string[] = [];
  for (let e: unknown = err; e && messages.length < 3; e = (e as { cause?: unknown }).cause) messages.push(describe(e));
  return `${prefix}: ${messages.join(': ').replace(/[\u0000-\u001f]+/g, ' ').slice(0, 240)}`;
}

/**
 * The health line of a start that failed. OIDC: discovery failed, and the category says why —
 * `upstream unreachable`, `upstream refused: private address`, `upstream not an OpenID provider`.
 */
export function startFailureReason(connector: Pick<LoginConnector, 'kind'>, err: unknown): string {
  return connector.kind === 'oidc' ? `upstream ${upstreamFailureOf(err)}` : healthReason('upstream unreachable', err);
}

/** A first link waiting for the account's own password (decision 0086). */
interface PendingLink {
  connectorId: string;
  connectorName: string;
  subject: string;
  accountId: string;
  email: string;
  /** What the upstream sign-in gave, kept for the login it continues. */
  amr: string[];
  /** The password was right: the link is made when the whole login finishes (its second step too). */
  proven?: boolean;
}

/**
 * Where the pending link waits: sealed in this browser, bound to the interaction (ten minutes),
 * for the link page and for the completion's hook that makes the link at the login's end.
 */
function pendingLinkCookie(box: SecretBox, now: () => number) {
  const cookie = sealedCookie<PendingLink>(box, now, { name: 'lanyard.sso_link', ttlSeconds: 600 });
  const seal = (uid: string) => `sso_link:${uid}`;
  const path = (uid: string) => `/interaction/${uid}`;
  return {
    get: (ctx: Context, uid: string) => cookie.get(ctx, seal(uid)),
    set: (ctx: Context, uid: string, value: PendingLink) => cookie.set(ctx, path(uid), seal(uid), value),
    clear: (ctx: Context, uid: string) => cookie.clear(ctx, path(uid)),
  };
}

/**
 * The completion hook of decision 0086: a first link its owner's password proved is made as the
 * login finishes — after the account's second step, when it has one — as a Trello link waits
 * (decision 0019). A login abandoned before its end, or ended by a reset, links nothing.
 */
export function connectorLinkHooks(deps: Pick<ConnectorStrategyDeps, 'box' | 'now' | 'resolver' | 'connectors'>): Pick<CompletionHooks, 'beforeFinish'> {
  const linkCookie = pendingLinkCookie(deps.box, deps.now);
  return {
    async beforeFinish(ctx, it, { accountId, flow }) {
      // Proven in this very request (no second step), the cookie's new value is not read back yet.
      const here = ctx.state.ssoLinkProven as PendingLink | undefined;
      const pending = here ?? linkCookie.get(ctx, it.uid);
      if (!pending?.proven || pending.accountId !== accountId) return;
      linkCookie.clear(ctx, it.uid);
      // Only for the login that proof led to: finished through that connector (its amr value is
      // in the flow the second step kept), not another login of the same interaction after it.
      if (!here && !flow?.amr.includes(connectorAmr(pending.connectorId))) return;
      // And only while the connector still answers for the address: turned off or its domain
      // unlinked meanwhile, nothing is linked.
      const connector = await deps.connectors.forLogin(pending.connectorId);
      if (!connector) return;
      const linked = await deps.resolver.linkProven(connector, pending.subject, { id: accountId, email: pending.email }, requestMeta(ctx, it.clientId));
      if (linked) ctx.state.log?.info({ accountId, connector: pending.connectorId }, 'company sign-in linked by the account’s own password');
      else ctx.state.log?.warn({ accountId, connector: pending.connectorId }, 'company sign-in not linked: the connector no longer answers for the address, or its subject is another account’s');
    },
  };
}

export interface ConnectorStrategyDeps {
  connectors: Connectors;
  /** The account's own password, for the first link of an admin's account (decision 0086). */
  accounts: Pick<AccountService, 'authenticate'>;
  throttle: Throttle;
  events: Pick<SecurityEvents, 'record'>;
  protocols: Partial<Record<LoginConnector['kind'], ConnectorProtocol>>;
  resolver: ConnectorLogin;
  linking: Pick<TrelloLinking, 'notifyRetiredUse'>;
  box: SecretBox;
  views: Views;
  issuer: string;
  now: () => number;
  /** Where a test login's callback goes (the console's page for it). */
  testCallbackPath: (organizationId: string, connectorId: string) => string;
}

/**
 * Starts a login at the connector's upstream: the redirect, and the checks to keep with the
 * browser. A failure (the upstream down, discovery refused) is recorded on the connector's
 * health line and thrown.
 */
export async function startAtUpstream(deps: Pick<ConnectorStrategyDeps, 'connectors' | 'protocols'>, connector: LoginConnector, options: { maxAge: number | undefined; loginHint?: string | undefined; relayState: string }) {
  const protocol = deps.protocols[connector.kind];
  if (!protocol) throw new Error(`no ${connector.kind} protocol configured`);
  try {
    return await protocol.start(connector, options);
  } catch (err) {
    await deps.connectors.recordOutcome(connector.id, { ok: false, reason: startFailureReason(connector, err) });
    throw err;
  }
}

export function connectorStrategy(deps: ConnectorStrategyDeps): LoginStrategy {
  const outside = new Router();
  const page = pageRenderer(deps.views);
  const problem = (ctx: Context, status: number, code: string, uid?: string) => page(ctx, status, 'login/federated-problem', { ...messageFor(code), uid });
  const cookie = ssoPendingCookie(deps.box, deps.now);
  const identityCookie = ssoIdentityCookie(deps.box, deps.now);
  // The link an admin's own password must confirm (decision 0086): who the upstream said this is,
  // sealed in this browser and bound to this interaction; nothing is linked until then.
  const linkCookie = pendingLinkCookie(deps.box, deps.now);
  const linkPage = (ctx: Context, it: { uid: string; clientName: string }, pending: PendingLink, status: number, error?: PageError) =>
    page(ctx, status, 'login/sso-link', { title: 'Confirm it’s you', uid: it.uid, clientName: it.clientName, email: pending.email, connectorName: pending.connectorName }, error);

  outside.get('/login/sso/:connectorId/callback', (ctx) => {
    const pending = cookie.get(ctx);
    if (!pending || pending.connectorId !== ctx.params.connectorId) return problem(ctx, 400, 'interaction.expired');
    ctx.status = 303;
    if (pending.test) return ctx.redirect(`${deps.testCallbackPath(pending.test.organizationId, pending.connectorId)}?${ctx.querystring}`);
    ctx.redirect(`/interaction/${encodeURIComponent(pending.uid ?? '')}/sso/${encodeURIComponent(pending.connectorId)}/callback?${ctx.querystring}`);
  });

  return {
    name: 'connector',
    methods: [],
    outside,
    steps: [
      {
        method: 'get',
        path: '/sso/:connectorId',
        async handle(ctx, it) {
          const connector = await deps.connectors.forLogin(String(ctx.params.connectorId));
          if (!connector) return problem(ctx, 404, 'sso.unknown', it.uid);
          const hint = typeof ctx.query.login_hint === 'string' && ctx.query.login_hint.length <= 320 ? ctx.query.login_hint : it.loginHint;
          let started;
          try {
            // RelayState (SAML) comes back unused — the pending cookie binds the answer — so it is
            // random: the IdP learns nothing of our interaction.
            started = await startAtUpstream(deps, connector, { maxAge: it.upstreamMaxAge, loginHint: hint, relayState: randomSecret(16) });
          } catch (err) {
            ctx.state.log?.error({ connector: connector.id, err: { message: (err as Error).message } }, 'connector upstream unreachable');
            return problem(ctx, 502, 'sso.unavailable', it.uid);
          }
          const since = it.upstreamMaxAge !== undefined ? Math.floor(deps.now() / 1000) - it.upstreamMaxAge : undefined;
          cookie.set(ctx, { uid: it.uid, connectorId: connector.id, pending: started.pending, ...(since ? { since } : {}) });
          ctx.state.log?.info({ clientId: it.clientId, connector: connector.id, maxAge: it.upstreamMaxAge }, 'login sent to the company identity provider');
          ctx.status = 303;
          ctx.redirect(started.redirectUrl);
        },
      },
      {
        method: 'get',
        path: '/sso/:connectorId/callback',
        async handle(ctx, it) {
          const connectorId = String(ctx.params.connectorId);
          // A SAML response, validated at the ACS continuation.
          const carried = identityCookie.get(ctx);
          if (carried) {
            identityCookie.clear(ctx);
            if (carried.uid !== it.uid || carried.connectorId !== connectorId || carried.test) return problem(ctx, 400, 'interaction.expired', it.uid);
            const samlConnector = await deps.connectors.forLogin(connectorId);
            if (!samlConnector) return problem(ctx, 404, 'sso.unknown', it.uid);
            return identified(ctx, it, samlConnector, carried.identity, carried.since);
          }
          const pending = cookie.get(ctx);
          cookie.clear(ctx);
          // The login started in this interaction, with this connector, in this browser.
          if (!pending || pending.uid !== it.uid || pending.connectorId !== connectorId || pending.test) return problem(ctx, 400, 'interaction.expired', it.uid);
          const connector = await deps.connectors.forLogin(connectorId);
          const protocol = connector && deps.protocols[connector.kind];
          if (!connector || !protocol) return problem(ctx, 404, 'sso.unknown', it.uid);
          if (typeof ctx.query.error === 'string') {
            const code = ctx.query.error.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 60);
            ctx.state.log?.info({ connector: connectorId, error: code }, 'company identity provider answered with an error');
            if (code === 'access_denied') return problem(ctx, 400, 'sso.cancelled', it.uid);
            await deps.connectors.recordOutcome(connectorId, { ok: false, reason: `the provider answered error=${code}` });
            return problem(ctx, 400, 'sso.failed', it.uid);
          }
          let identity: ConnectorIdentity;
          try {
            identity = await protocol.finish(connector, { callbackUrl: new URL(`${deps.issuer}${oidcCallbackPath(connectorId)}?${ctx.querystring}`) }, pending.pending);
          } catch (err) {
            ctx.state.log?.warn({ connector: connectorId, err: { message: (err as Error).message } }, 'company identity provider response refused');
            await deps.connectors.recordOutcome(connectorId, { ok: false, reason: healthReason('response refused', err) });
            return problem(ctx, 400, 'sso.failed', it.uid);
          }
          return identified(ctx, it, connector, identity, pending.since);
        },
      },
      {
        method: 'get',
        path: '/sso-link',
        async handle(ctx, it) {
          const pending = linkCookie.get(ctx, it.uid);
          if (!pending || pending.proven) return problem(ctx, 400, 'interaction.expired', it.uid);
          linkPage(ctx, it, pending, 200);
        },
      },
      {
        // The admin's own password confirms the first link of their account to the company's
        // identity provider; then the login goes on as through the connector (decision 0086).
        method: 'post',
        path: '/sso-link',
        async handle(ctx, it) {
          const pending = linkCookie.get(ctx, it.uid);
          if (!pending || pending.proven) return problem(ctx, 400, 'interaction.expired', it.uid);
          const connector = await deps.connectors.forLogin(pending.connectorId);
          if (!connector) return problem(ctx, 404, 'sso.unknown', it.uid);
          const input = parseForm(ctx, passwordOnlyInput);
          // Counted as any password typed for the address (decision 0011), and answered 503 when
          // the hashing is full (decision 0063).
          const t = await unlessBusy(ctx, () => throttled(ctx, deps.throttle, { scope: 'password', subject: pending.email }, () => deps.accounts.authenticate(pending.email, input.password), (r) => (r.ok && r.account.id === pending.accountId ? 'passed' : 'failed')));
          if ('problem' in t) return linkPage(ctx, it, pending, 503, t.problem);
          if (t.refused) return linkPage(ctx, it, pending, 429, t.error);
          if (!t.result.ok || t.result.account.id !== pending.accountId) {
            // In the owner's security activity, as a wrong password at the login page is.
            await deps.events.record({ type: 'login.failed', accountId: pending.accountId, reason: 'wrong_password' }, requestMeta(ctx, it.clientId));
            return linkPage(ctx, it, pending, 401, t.orWait('login.invalid_credentials'));
          }
          // Proven; the link itself waits for the whole login (connectorLinkHooks).
          linkCookie.set(ctx, it.uid, { ...pending, proven: true });
          ctx.state.ssoLinkProven = { ...pending, proven: true };
          return { account: t.result.account, method: `connector:${connector.id}` as const, amr: [...pending.amr, 'pwd'], via: 'sso_link', undelegated: true };
        },
      },
    ],
  };

  /** The upstream said who this is: the account, then the factor for the completion service. */
  async function identified(ctx: Context, it: Parameters<LoginStrategy['steps'][number]['handle']>[1], connector: LoginConnector, identity: ConnectorIdentity, since: number | undefined) {
    // A re-authentication needs a sign-in made for it, not the upstream's standing session; a
    // relying party's max_age, a sign-in no older than it.
    if (since !== undefined && (identity.authTime === undefined || identity.authTime < since - AUTH_TIME_SKEW_SECONDS)) {
      ctx.state.log?.info({ connector: connector.id, authTime: identity.authTime, maxAge: it.upstreamMaxAge }, 'company sign-in older than this login accepts');
      return problem(ctx, 401, it.upstreamMaxAge ? 'sso.not_recent' : 'sso.not_fresh', it.uid);
    }
    await deps.connectors.recordOutcome(connector.id, { ok: true });
    const meta = requestMeta(ctx, it.clientId);
    const result = await deps.resolver.resolve(connector, identity, meta);
    if (!result.ok) {
      ctx.state.log?.info({ connector: connector.id, problem: result.problem }, 'company sign-in refused');
      if (result.problem === 'sso.email_retired') {
        await deps.linking.notifyRetiredUse(result.email, result.retiredFor, meta);
        return problem(ctx, 200, 'sso.email_retired', it.uid);
      }
      return problem(ctx, result.problem === 'sso.conflict' ? 409 : 403, result.problem, it.uid);
    }
    ctx.state.log?.info({ accountId: result.account.id, connector: connector.id, how: result.how }, 'company sign-in');
    const amr = ['fed', ...(identity.mfa ? ['mfa'] : []), connectorAmr(connector.id)];
    if (result.how === 'prove') {
      // An admin's account without a password has nothing of its own to confirm the link with:
      // its owner signs in as they usually do (decision 0086).
      if (!result.account.password_hash) return problem(ctx, 403, 'sso.link_needs_password', it.uid);
      linkCookie.set(ctx, it.uid, { connectorId: connector.id, connectorName: connector.name, subject: identity.subject, accountId: result.account.id, email: result.account.email, amr });
      ctx.status = 303;
      return ctx.redirect(`/interaction/${it.uid}/sso-link`);
    }
    return { account: result.account, method: `connector:${connector.id}` as const, amr, via: 'sso' };
  }
}

/**
 * The service provider's addresses of SAML connectors (SAML 2.0 Bindings §3.5, HTTP-POST), all
 * under /saml/:connectorId/ — the stable URLs the IdP's admin is given:
 *
 * - GET  metadata — the SP metadata (src/routes/saml.ts);
 * - POST acs — where the IdP's page posts the Response, cross-site: no SameSite=Lax cookie comes
 *   with it, so nothing here can tell which browser login it answers. It only re-posts the same
 *   fields to our own origin (a page with a form, submitted by /static/sso-continue.js, or by the
 *   person's click without JavaScript); nothing is validated or stored yet;
 * - POST acs/continue — same-site now, so the sealed pending cookie comes with it: the Response
 *   is validated against the request *this browser* made (InResponseTo, through the protocol),
 *   the identity is carried sealed to the interaction's callback step by a 303 (a top-level GET
 *   inside /interaction/<uid>, where the engine's interaction cookie is sent).
 *
 * No CSRF token: a forged post can only carry a Response, which must answer this browser's own
 * request; what stands in for the token is the IdP's signature and the request id.
 */
export function samlEndpoints(deps: ConnectorStrategyDeps & { serviceProvider: Pick<SamlServiceProvider, 'metadata'> }): Router {
  const router = new Router();
  const page = pageRenderer(deps.views);
  const problem = (ctx: Context, status: number, code: string, uid?: string) => page(ctx, status, 'login/federated-problem', { ...messageFor(code), uid });
  const cookie = ssoPendingCookie(deps.box, deps.now);
  const identityCookie = ssoIdentityCookie(deps.box, deps.now);

  router.use(samlMetadataRoutes({
    findConnector: async (id) => {
      const connector = await deps.connectors.forAnyState(id);
      return connector?.kind === 'saml' ? connector : undefined;
    },
    serviceProvider: deps.serviceProvider,
  }).routes());

  /** The posted fields, or a page saying the post is not a SAML response. */
  function posted(ctx: Context) {
    try {
      return readSamlPost(ctx);
    } catch (err) {
      if (!isSamlRefusal(err)) throw err;
      ctx.state.log?.info({ reason: err.reason }, 'SAML post refused');
      problem(ctx, 400, err.code);
      return undefined;
    }
  }

  router.post('/saml/:connectorId/acs', samlPostBody(), (ctx) => {
    const form = posted(ctx);
    if (!form) return;
    page(ctx, 200, 'login/sso-continue', {
      title: 'Continuing your sign-in',
      action: `/saml/${encodeURIComponent(String(ctx.params.connectorId))}/acs/continue`,
      SAMLResponse: form.SAMLResponse,
      RelayState: form.RelayState,
      script: 'sso-continue.js',
    });
  });

  router.post('/saml/:connectorId/acs/continue', samlPostBody(), async (ctx) => {
    const form = posted(ctx);
    if (!form) return;
    const connectorId = String(ctx.params.connectorId);
    const pending = cookie.get(ctx);
    // No login of this browser waits for this connector: an unsolicited response (IdP-initiated
    // login needs a login started here to land in), or one from another browser.
    if (!pending || pending.connectorId !== connectorId) return problem(ctx, 400, 'sso.saml_unsolicited');
    cookie.clear(ctx);
    const connector = pending.test ? await deps.connectors.forAnyState(connectorId) : await deps.connectors.forLogin(connectorId);
    const protocol = connector && deps.protocols[connector.kind];
    if (!connector || connector.kind !== 'saml' || !protocol) return problem(ctx, 404, 'sso.unknown', pending.uid);
    let identity: ConnectorIdentity;
    try {
      identity = await protocol.finish(connector, { form }, pending.pending);
    } catch (err) {
      const code = isSamlRefusal(err) ? err.code : 'sso.saml_invalid';
      const reason = isSamlRefusal(err) ? err.reason : (err as Error).message;
      ctx.state.log?.warn({ connector: connectorId, code, reason }, 'SAML response refused');
      // The person cancelling at the IdP is not the connector's fault.
      if (code !== 'sso.saml_idp_error') await deps.connectors.recordOutcome(connectorId, { ok: false, reason: `response refused: ${code}: ${reason}` });
      return problem(ctx, 400, code, pending.uid);
    }
    identityCookie.set(ctx, { connectorId, identity, ...(pending.uid ? { uid: pending.uid } : {}), ...(pending.since ? { since: pending.since } : {}), ...(pending.test ? { test: pending.test } : {}) });
    ctx.status = 303;
    if (pending.test) return ctx.redirect(deps.testCallbackPath(pending.test.organizationId, connectorId));
    ctx.redirect(`/interaction/${encodeURIComponent(pending.uid ?? '')}/sso/${encodeURIComponent(connectorId)}/callback`);
  });

  return router;
}
