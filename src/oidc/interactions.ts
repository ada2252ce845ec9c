import type Provider from 'oidc-provider';
import type { Context, Middleware } from 'koa';
import compose from 'koa-compose';
import { AppError } from '../shared/errors.ts';
import { isFirstParty } from './provider.ts';
import { levelOf, requestedLevel, type Acr } from '../policy/policy.ts';
import { SESSION_INSUFFICIENT } from './provenance.ts';

export { SESSION_INSUFFICIENT };

/**
 * The flows' window onto oidc-provider's interactions (login, consent): they read what the
 * engine wants and hand results back here, without touching the engine themselves.
 */

export interface InteractionView {
  uid: string;
  prompt: 'login' | 'consent' | string;
  /**
   * Seconds until the engine forgets this interaction: login flow state lives no longer. The
   * engine dates it by the system clock; what is left is what counts (as in the adapter).
   */
  expiresIn: number;
  reasons: string[];
  clientId: string;
  /** Scopes and claims the client asks for that the user has not granted yet. */
  missingScopes: string[];
  missingClaims: string[];
  /** Account of the current session, if any (prompt=login / max_age re-authentication). */
  sessionAccountId: string | undefined;
  /** The relying party asked for prompt=login (OIDC Core §3.1.2.1): a fresh login, session or not. */
  loginPrompted: boolean;
  /**
   * The relying party's max_age (OIDC Core §3.1.2.1), seconds: the oldest sign-in it accepts. The
   * engine checks it against a session here; a login at an upstream provider must meet it too.
   */
  maxAge: number | undefined;
  loginHint: string | undefined;
  /**
   * The level the relying party asked for with `acr_values` (OIDC Core §3.1.2.1), for the login
   * flow to ask the decision point with. (The `claims` parameter, where an essential acr would be
   * asked for, is not enabled.)
   */
  wantedAcr: Acr | undefined;
}

export interface ClientView {
  clientId: string;
  name: string;
  firstParty: boolean;
  native: boolean;
  policyUri: string | undefined;
  tosUri: string | undefined;
  /** Where a person goes back to the app: its registered client_uri, else its redirect URI's site. */
  homeUrl: string | undefined;
}

/** max_age as the engine accepted it: a non-negative whole number of seconds, or none. */
function maxAgeOf(value: unknown): number | undefined {
  const seconds = typeof value === 'string' || typeof value === 'number' ? Number(value) : NaN;
  return Number.isSafeInteger(seconds) && seconds >= 0 ? seconds : undefined;
}

/**
 * Marks, in the browser that finished it, that an interaction is over and for which client: the
 * engine destroys a finished interaction, so a page reached with the back button could otherwise
 * only say "expired". Signed with the cookie keys; scoped to the interaction's own path.
 */
const FINISHED_COOKIE = 'lanyard.finished';
/** As long as an interaction lives by default: the back button is used soon or not at all. */
const FINISHED_MAX_AGE_MS = 3600_000;

/** The site of a web client's first http(s) redirect URI (never a native app's loopback or scheme). */
function siteOf(redirectUris: readonly string[] | undefined): string | undefined {
  for (const uri of redirectUris ?? []) {
    try {
      const url = new URL(uri);
      if (url.protocol === 'https:' || url.protocol === 'http:') return `${url.origin}/`;
    } catch {
      // not a URL: try the next one
    }
  }
  return undefined;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The signer of Koa's signed cookies (the `cookies` module keeps it as `keys`; a Keygrip). */
type CookieSigner = { sign(data: string): string };

/** A cookie header without the pairs named `name` and `name.sig`. */
function withoutCookie(header: string | undefined, name: string): string[] {
  if (!header) return [];
  return header.split(';').map((pair) => pair.trim()).filter((pair) => {
    const key = (pair.includes('=') ? pair.slice(0, pair.indexOf('=')) : pair).trim();
    return pair !== '' && key !== name && key !== `${name}.sig`;
  });
}

export function createInteractions(provider: Provider) {
  /**
   * The interaction each request loaded, so that the guard, the step and the finish share one
   * read (each `interactionDetails` is a statement, two when a session is bound, and a context
   * built by the engine). Per request, so it is never stale across requests or instances.
   */
  const loaded = new WeakMap<object, Promise<Details>>();

  function load(ctx: Context): Promise<Details> {
    let details = loaded.get(ctx.req);
    if (!details) {
      details = loadFresh(ctx);
      loaded.set(ctx.req, details);
    }
    return details;
  }

  async function loadFresh(ctx: Context, again = false): Promise<Details> {
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      // The uid in the URL must be the interaction bound to this browser's cookie.
      if (ctx.params?.uid && ctx.params.uid !== details.uid) throw new AppError('interaction.expired', 400);
      return details;
    } catch (err) {
      if (err instanceof AppError) throw err;
      if ((err as { name?: string }).name === 'SessionNotFound') {
        if (!again && (err as { error_description?: string }).error_description === 'session not found' && (await unbound(ctx))) return loadFresh(ctx, true);
        throw new AppError('interaction.expired', 400, { cause: err });
      }
      throw err;
    }
  }

  /**
   * A login interaction started in a browser signed in then (prompt=login, max_age, a higher
   * level) is bound by the engine to that session, and refused once the session is gone. It goes
   * when the person's password is reset from the login page ("Forgot your password?": every
   * session ends, docs/flows/password-reset.md), when they sign out in another tab, or when it
   * expires: the person then met "This sign-in has ended" on the way back, with a working sign-in
   * a click away. A login asks for every factor again whatever it was bound to, so such an
   * interaction goes on unbound, as a sign-in from a browser with no session — what the engine
   * itself does to an interaction whose login is for another account (resumeAction). Only for a
   * login prompt (consent is the signed-in account's own). A browser signed in meanwhile as
   * someone else has a session of a new id, so its interaction is unbound too; the login that
   * finishes it then meets the engine's own handling of a session of another account (it signs
   * that one out first), as any interaction of that browser would.
   */
  async function unbound(ctx: Context): Promise<boolean> {
    const id = ctx.cookies.get(provider.cookieName('interaction'), { signed: true });
    const interaction = id ? await provider.Interaction.find(id) : undefined;
    if (!interaction?.session || interaction.prompt.name !== 'login') return false;
    ctx.state.log?.info({ clientId: interaction.params.client_id }, 'login interaction outlived its session: it goes on as a sign-in from a new browser');
    delete interaction.session;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return true;
  }

  /**
   * What `provider.interactionResult` does (oidc-provider 9, lib/provider.js), on the interaction
   * this request already loaded rather than a third read of it: the result (merged with the last
   * submission when asked, never for an error) saved for the interaction's remaining lifetime,
   * and the URL that resumes the authorization.
   */
  async function redirect(ctx: Context, details: Details, result: Record<string, unknown>, merge: boolean): Promise<void> {
    details.result = merge && !('error' in result) ? { ...details.lastSubmission, ...result } : result;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
    const url = details.returnTo;
    ctx.cookies.set(FINISHED_COOKIE, String(details.params.client_id), {
      path: `/interaction/${details.uid}`, httpOnly: true, sameSite: 'lax', secure: ctx.secure, signed: true, maxAge: FINISHED_MAX_AGE_MS,
    });
    if (await resumedHere(ctx, details)) return;
    ctx.status = 303;
    ctx.redirect(url);
  }

  /** The engine's own middleware, as src/app.ts mounts it at "/" (koa-mount composes the same). */
  let engine: Middleware | undefined;

  /**
   * Runs the engine's resume (GET /auth/:uid, oidc-provider's resumeAction and the rest of the
   * authorization) inside the form post that finished the interaction, instead of answering with
   * a redirect to it: the browser goes straight to the client's redirect URI (or to the consent
   * page), one round trip fewer, and the result saved above is written with the resume's writes —
   * the interaction's end, the session, the code — in the request's one statement (decision 0079:
   * a password login is 3 commits). The engine runs unchanged on this request's context, as for
   * the browser's own GET; what that GET would have carried is put in front of it:
   *
   * - the method and path of the resume URL;
   * - the resume cookie. The engine set it with the interaction cookie, for the same uid and the
   *   same lifetime, on the resume URL's path only, so the browser does not send it here. This
   *   request proved the interaction cookie (`interactionDetails`, and the uid in the URL must be
   *   it), so it is signed here for that uid with the cookie keys the engine checks it with. One
   *   the request itself carried is dropped first: it never names another interaction.
   *
   * Only a same-site form post of our interaction pages (CSRF-checked) resumes here; the upstream
   * providers' callbacks and anything else keep the redirect. Afterwards the request's method,
   * URL and cookies are its own again, for the access line and whatever runs after.
   */
  async function resumedHere(ctx: Context, details: Details): Promise<boolean> {
    if (ctx.method !== 'POST' || !ctx.path.startsWith(`/interaction/${details.uid}`)) return false;
    const signer = (ctx.cookies as unknown as { keys?: CookieSigner }).keys;
    if (!signer) return false;
    const resume = new URL(details.returnTo);
    const name = provider.cookieName('resume');
    const { req } = ctx;
    const own = { method: req.method, url: req.url, cookie: req.headers.cookie };
    req.headers.cookie = [`${name}=${details.uid}`, `${name}.sig=${signer.sign(`${name}=${details.uid}`)}`, ...withoutCookie(own.cookie, name)].join('; ');
    req.method = 'GET';
    req.url = `${resume.pathname}${resume.search}`;
    engine ??= compose(provider.middleware as Middleware[]);
    try {
      await engine(ctx, () => {
        throw new Error(`the engine has no route for its resume URL ${resume.pathname}`);
      });
    } finally {
      req.method = own.method;
      req.url = own.url;
      if (own.cookie === undefined) delete req.headers.cookie;
      else req.headers.cookie = own.cookie;
    }
    return true;
  }

  async function clientView(clientId: string): Promise<ClientView | undefined> {
    const client = await provider.Client.find(clientId);
    if (!client) return undefined;
    const native = client.applicationType === 'native';
    return {
      clientId: client.clientId,
      name: client.clientName ?? client.clientId,
      firstParty: isFirstParty(client),
      native,
      policyUri: client.policyUri,
      tosUri: client.tosUri,
      homeUrl: client.clientUri ?? (native ? undefined : siteOf(client.redirectUris)),
    };
  }

  return {
    async view(ctx: Context): Promise<InteractionView> {
      const d = await load(ctx);
      const details = d.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      return {
        uid: d.uid,
        prompt: d.prompt.name,
        expiresIn: Math.max(0, d.exp - Math.floor(Date.now() / 1000)),
        reasons: d.prompt.reasons,
        clientId: String(d.params.client_id),
        missingScopes: details.missingOIDCScope ?? [],
        missingClaims: details.missingOIDCClaims ?? [],
        sessionAccountId: d.session?.accountId,
        loginPrompted: typeof d.params.prompt === 'string' && d.params.prompt.split(' ').includes('login'),
        maxAge: maxAgeOf(d.params.max_age),
        loginHint: typeof d.params.login_hint === 'string' ? d.params.login_hint : undefined,
        wantedAcr: requestedLevel(d.params.acr_values),
      };
    },

    client: clientView,

    /**
     * The client of an interaction this browser already finished (logged in, allowed or
     * cancelled), when the page is opened again — the back button after returning to the app.
     */
    async finished(ctx: Context): Promise<ClientView | undefined> {
      const clientId = ctx.cookies.get(FINISHED_COOKIE, { signed: true });
      return clientId ? clientView(clientId) : undefined;
    },

    /**
     * Ends the login prompt for `accountId`; amr values per RFC 8176, `acr` the level the
     * decision point said the login reached (by default, the level its methods amount to). The
     * engine keeps both on the session and copies them to the codes and refresh tokens it issues.
     */
    async finishLogin(ctx: Context, login: { accountId: string; amr: string[]; acr?: Acr }): Promise<void> {
      const d = await load(ctx);
      const acr = login.acr ?? levelOf(login.amr);
      await redirect(ctx, d, { login: { accountId: login.accountId, amr: login.amr, acr, remember: true } }, false);
    },

    /** Grants what the consent prompt asked for and continues the authorization. */
    async finishConsent(ctx: Context): Promise<void> {
      const d = await load(ctx);
      if (d.prompt.name !== 'consent' || !d.session?.accountId) throw new AppError('interaction.expired', 400);
      const details = d.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      const grant = d.grantId
        ? (await provider.Grant.find(d.grantId)) ?? new provider.Grant({ accountId: d.session.accountId, clientId: String(d.params.client_id) })
        : new provider.Grant({ accountId: d.session.accountId, clientId: String(d.params.client_id) });
      if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
      if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await redirect(ctx, d, { consent: d.grantId ? {} : { grantId } }, true);
    },

    /** The user said no: the client receives access_denied (RFC 6749 §4.1.2.1). */
    async abort(ctx: Context): Promise<void> {
      const d = await load(ctx);
      await redirect(ctx, d, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
    },
  };
}

export type Interactions = ReturnType<typeof createInteractions>;
