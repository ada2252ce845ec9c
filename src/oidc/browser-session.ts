import type Provider from 'oidc-provider';
import type { Context } from 'koa';
import type { AccountRow } from '../persistence/queries/accounts.ts';
import { ACR_ONE_FACTOR, idleTimeoutOf, provenanceFrom, REAUTHENTICATION_MAX_AGE_SECONDS, type AccountSubject, type Decision, type DecisionInput, type DenyReason } from '../policy/policy.ts';
import { tokenProvenance } from './provenance.ts';
import { isFirstParty } from './provider.ts';

/** An access token presented to one of our APIs: its account when the policy allows its use, else why not. */
export type Bearer =
  /** `firstParty`: the token's client is one of our own products (`lanyard_first_party`). */
  | {
    ok: true; accountId: string; clientId: string; firstParty: boolean; account: AccountRow; scopes: ReadonlySet<string>;
    /**
     * Whether the sign-in the token came from is recent and strong enough for an irreversible
     * change — the decision point's `reauthenticate` stage, the console's rule (decision 0027) —
     * or the level a new sign-in must reach (RFC 9470 step-up). Asked only by the calls that need
     * it (two of the management API's), not decided on every bearer request.
     */
    recentLogin: () => { ok: true } | { ok: false; acr: string | undefined; maxAgeSeconds: number };
  }
  | { ok: false; accountId: string; clientId: string; reason: DenyReason };

export interface BearerPolicy {
  /** The account with its policy subject for the token stages, in one statement (`policy.loadForTokens`). */
  loadForTokens(accountId: string): Promise<{ account: AccountRow; subject: AccountSubject } | undefined>;
  decide(input: Omit<DecisionInput, 'now'>): Decision;
}

/**
 * A browser session seen by our own pages: signed in and still meeting the account's policy
 * (`ok`), signed in but no longer meeting it (`insufficient`: a deactivated account, two-step
 * required since a one-factor login — the person logs in again), or nobody.
 */
export type Standing =
  | { ok: true; session: SignedInSession; account: AccountRow; subject: AccountSubject }
  | { ok: false; session: SignedInSession | undefined; reason: DenyReason | undefined };

/** A browser's session: its account, and how (and when) its last login was made. */
export interface SignedInSession {
  accountId: string;
  uid: string;
  login: { amr: string[] | undefined; acr: string | undefined; authTime: number | undefined };
}

/**
 * Who is signed in to this browser, read from oidc-provider's own session cookie. Lanyard's
 * account pages use the same session as every relying party: signing out anywhere signs out here.
 */
/** When a session was last used, for a policy's idle timeout (`session_activity`). */
export interface SessionUse {
  /** Seconds since the epoch. */
  lastUsed(sessionUid: string): Promise<number | undefined>;
  /** The session was used now. */
  used(sessionUid: string): Promise<void>;
}

export function createBrowserSessions(provider: Provider, policy: BearerPolicy, use?: SessionUse) {
  /**
   * The signed-in account of this browser and how its last login was made: the RFC 8176
   * methods, the level and the login time the engine keeps with the session. Settings give
   * them to the decision point, which decides whether a sensitive change needs a new login
   * (privileged session, docs/flows/settings.md).
   */
  async function current(ctx: Context): Promise<SignedInSession | undefined> {
    const session = await provider.Session.get(ctx as never);
    if (!session.accountId) return undefined;
    return {
      accountId: session.accountId,
      uid: session.uid,
      login: { amr: session.amr, acr: session.acr, authTime: session.authTime() },
    };
  }

  return {
    /**
     * The account behind an `Authorization: Bearer` access token (RFC 6750 §2.1; the scheme is
     * case-insensitive, RFC 9110 §11.1), if the token — and its client — is
     * valid: with `ok: false` when the decision point refuses its use now (stage "api": the
     * account was deactivated, or two-step became required after a one-factor login), so the API
     * answers 401 as userinfo does. The account is loaded once, with its policy columns.
     */
    async bearer(ctx: Context): Promise<Bearer | undefined> {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('authorization'));
      if (!match) return undefined;
      const token = await provider.AccessToken.find(match[1]!);
      if (!token || token.isExpired || !token.accountId) return undefined;
      // A deleted client's tokens stop at once, as at userinfo (the lookup is cached in-process).
      const client = token.clientId ? await provider.Client.find(token.clientId) : undefined;
      if (!client) return undefined;
      const ids = { accountId: token.accountId, clientId: client.clientId };
      const loaded = await policy.loadForTokens(token.accountId);
      if (!loaded) return { ok: false, ...ids, reason: 'policy.account_inactive' };
      const provenance = tokenProvenance(token);
      const decision = policy.decide({ stage: 'api', subject: loaded.subject, provenance });
      if (decision.outcome !== 'allow') return { ok: false, ...ids, reason: decision.outcome === 'deny' ? decision.reason : 'policy.login_again' };
      const recentLogin = () => {
        const again = policy.decide({ stage: 'reauthenticate', subject: loaded.subject, provenance });
        return again.outcome === 'allow' ? { ok: true as const }
          // acr_values only when a level above one factor is wanted (RFC 9470 §3: the level the new sign-in must reach).
          : { ok: false as const, acr: again.outcome === 'reauthenticate' && again.wantedAcr !== ACR_ONE_FACTOR ? again.wantedAcr : undefined, maxAgeSeconds: REAUTHENTICATION_MAX_AGE_SECONDS };
      };
      return { ok: true, ...ids, firstParty: isFirstParty(client), account: loaded.account, scopes: new Set((token.scope ?? '').split(' ').filter(Boolean)), recentLogin };
    },

    /** The client behind a client-credentials access token (RFC 6749 §4.4), for server-to-server APIs. */
    async serviceClient(ctx: Context): Promise<string | undefined> {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('authorization'));
      if (!match) return undefined;
      const token = await provider.ClientCredentials.find(match[1]!);
      if (!token || token.isExpired || !token.clientId) return undefined;
      // A deleted client's tokens stop at once (the lookup is cached in-process).
      return (await provider.Client.find(token.clientId)) ? token.clientId : undefined;
    },

    current,

    /**
     * The session as the account pages and the console take it: the decision point's `session`
     * stage, as the engine asks it when a relying party reuses the session at /auth
     * (src/oidc/provenance.ts) — our own pages get no more from a session than a relying party
     * would. One statement (the account with what the stage reads).
     */
    async standing(ctx: Context): Promise<Standing> {
      const session = await current(ctx);
      if (!session) return { ok: false, session: undefined, reason: undefined };
      const loaded = await policy.loadForTokens(session.accountId);
      if (!loaded) return { ok: false, session, reason: 'policy.account_inactive' };
      let provenance = provenanceFrom(session.login);
      // Under an idle timeout: when the session was last used (here or at /auth), or its login when later.
      const idle = use && provenance && idleTimeoutOf(loaded.subject) !== undefined;
      if (idle) provenance = { ...provenance!, lastActive: Math.max((await use!.lastUsed(session.uid)) ?? 0, provenance!.authTime) };
      const decision = policy.decide({ stage: 'session', subject: loaded.subject, provenance });
      if (decision.outcome !== 'allow') return { ok: false, session, reason: decision.outcome === 'deny' ? decision.reason : 'policy.login_again' };
      // A page of ours is a use of the session, as an authorization is.
      if (idle) await use!.used(session.uid);
      return { ok: true, session, account: loaded.account, subject: loaded.subject };
    },

    /**
     * Whether this standing session may make a privileged change without proving itself again:
     * the decision point's `reauthenticate` stage (a login within the last minutes at the level
     * the account requires; docs/flows/settings.md, decision 0027).
     */
    privileged(standing: Extract<Standing, { ok: true }>): boolean {
      return policy.decide({ stage: 'reauthenticate', subject: standing.subject, provenance: provenanceFrom(standing.session.login) }).outcome === 'allow';
    },
  };
}

export type BrowserSessions = ReturnType<typeof createBrowserSessions>;

/** The built-in client through which the account pages sign people in (response_type=none). */
export const ACCOUNT_CLIENT_ID = 'lanyard-account';
