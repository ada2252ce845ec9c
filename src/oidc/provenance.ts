import { errors, interactionPolicy, type AccessToken, type AuthorizationCode, type KoaContextWithOIDC, type RefreshToken } from 'oidc-provider';
import { MANAGE_ORGANIZATIONS_SCOPE } from '../identity/claims-release.ts';
import { idleTimeoutOf, provenanceFrom, requestedLevel, type AccountSubject, type Decision, type DecisionInput, type Provenance, type Stage } from '../policy/policy.ts';

/**
 * How sessions and grants know how they were made, and where the engine asks the decision point
 * about it (docs/flows/login.md "Provenance and levels", docs/decisions/0025-session-provenance-and-levels.md).
 *
 * The engine keeps `amr`, `acr` and the login time on the Session and copies them to the
 * authorization code and the refresh token; an access token keeps none of them, so the token
 * endpoint adds them to its `extra` claims (the documented `extraTokenClaims` hook): stored in the
 * same row as the token, and answered by introspection as RFC 9068 §2.2.1 names them.
 */

/** The login prompt's reason when the browser session no longer suffices (InteractionView.reasons). */
export const SESSION_INSUFFICIENT = 'session_insufficient';

type PolicyDecide = (input: Omit<DecisionInput, 'now'>) => Decision;

/** The provenance claims an access token carries, from the code or refresh token it was issued for. */
export function accessTokenProvenance(ctx: KoaContextWithOIDC | undefined, token: { kind: string; accountId?: string | undefined }): Record<string, unknown> | undefined {
  if (token.kind !== 'AccessToken' || !token.accountId || !ctx?.oidc) return undefined;
  // The token endpoint's source: the refresh token (after rotation, the new one: same provenance)
  // or the authorization code. Access tokens are issued nowhere else (response types code and none).
  const source = ctx.oidc.entities.RefreshToken ?? ctx.oidc.entities.AuthorizationCode;
  if (!source) return undefined;
  return {
    ...(source.acr ? { acr: source.acr } : {}),
    ...(source.amr ? { amr: source.amr } : {}),
    ...(source.authTime ? { auth_time: source.authTime } : {}),
  };
}

type StoredToken = AccessToken | AuthorizationCode | RefreshToken | { kind: string };

/** How the grant behind a token was made: from its own fields, or an access token's extra claims. */
export function tokenProvenance(token: StoredToken): Provenance | undefined {
  if (token.kind === 'AccessToken') {
    const extra = ((token as AccessToken).extra ?? {}) as { acr?: string; amr?: string[]; auth_time?: number };
    return provenanceFrom({ acr: extra.acr, amr: extra.amr, authTime: extra.auth_time });
  }
  const { acr, amr, authTime, iat } = token as Partial<RefreshToken>;
  const provenance = provenanceFrom({ acr, amr, authTime });
  // A grant's last use is when its token was issued: every refresh rotates the refresh token
  // (`rotateRefreshToken`), so the one presented was issued at the grant's previous use — the
  // code exchange or the last refresh. A policy's idle timeout reads it (decision 0039).
  return provenance && iat ? { ...provenance, lastActive: iat } : provenance;
}

/** What using this token is, for the decision point; undefined for the authorization endpoint's own lookup. */
export function stageFor(token: StoredToken | undefined): Stage | undefined {
  if (!token) return undefined;
  // findAccount receives an access token only from userinfo; every other token is a grant used
  // at the token endpoint (refresh token, authorization code).
  return token.kind === 'AccessToken' ? 'userinfo' : 'refresh';
}

/**
 * The engine's login prompt with one check of ours: a browser session reused at /auth must still
 * meet the account's policy (say two-step became required since) and the level the relying party
 * asks for with `acr_values`. When it does not, the login prompt runs again with the reason
 * `session_insufficient` instead of a code being issued. `subjectOf` returns what findAccount loaded
 * for the session's account in this request (no second query).
 */
export function loginPolicy(deps: {
  decide: PolicyDecide;
  subjectOf: (ctx: KoaContextWithOIDC) => AccountSubject | undefined;
  /** When a browser session was last used (seconds since the epoch; `session_activity`), for an idle timeout. */
  sessionLastUsed?: (sessionUid: string) => Promise<number | undefined>;
}) {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  const { Check } = interactionPolicy;

  function sessionProvenance(ctx: KoaContextWithOIDC): Provenance | undefined {
    const session = ctx.oidc.session!;
    return provenanceFrom({ amr: session.amr, acr: session.acr, authTime: session.authTime() });
  }

  /**
   * The session's provenance with when it was last used, read only when the account's policy has
   * an idle timeout: its last authorization (`session_activity`), or its login when later.
   */
  async function withLastUse(ctx: KoaContextWithOIDC, subject: AccountSubject, provenance: Provenance | undefined): Promise<Provenance | undefined> {
    if (!provenance || !deps.sessionLastUsed || idleTimeoutOf(subject) === undefined) return provenance;
    const seen = await deps.sessionLastUsed(ctx.oidc.session!.uid);
    return { ...provenance, lastActive: Math.max(seen ?? 0, provenance.authTime) };
  }

  login.checks.add(new Check(
    SESSION_INSUFFICIENT,
    'the session does not meet the account policy or the requested authentication level',
    // prompt=none is answered with login_required (OIDC Core §3.1.2.6).
    'login_required',
    async (ctx) => {
      const { oidc } = ctx;
      if (!oidc.session?.accountId) return Check.NO_NEED_TO_PROMPT; // no_session asks for a login
      const subject = deps.subjectOf(ctx);
      // The session's account can no longer be used (deactivated, closed, gone): log in again,
      // where the login flow says why.
      if (!subject) return Check.REQUEST_PROMPT;
      const provenance = sessionProvenance(ctx);
      if (oidc.result?.login) {
        // Logged in during this very request: asking again could only loop. The login flow asked
        // the decision point for what the account requires; a login that still falls short (the
        // policy changed meanwhile) is refused. acr_values is a voluntary request (OIDC Core
        // §3.1.2.1): the ID token says which level was reached.
        const decision = deps.decide({ stage: 'session', subject, provenance });
        if (decision.outcome !== 'allow') throw new errors.AccessDenied('the login did not meet the account policy');
        return Check.NO_NEED_TO_PROMPT;
      }
      const wantedAcr = requestedLevel(oidc.params?.acr_values);
      const decision = deps.decide({ stage: 'session', subject, provenance: await withLastUse(ctx, subject, provenance), ...(wantedAcr ? { wantedAcr } : {}) });
      if (decision.outcome !== 'allow') return Check.REQUEST_PROMPT;
      // Acting as an organization's admin is a privileged change like the console's: the
      // session's login must be recent (the decision point's `reauthenticate`), or a stale or
      // stolen session would mint an admin token for any client (decision 0032).
      const scopes = typeof oidc.params?.scope === 'string' ? oidc.params.scope.split(' ') : [];
      if (scopes.includes(MANAGE_ORGANIZATIONS_SCOPE) && deps.decide({ stage: 'reauthenticate', subject, provenance }).outcome !== 'allow') return Check.REQUEST_PROMPT;
      return Check.NO_NEED_TO_PROMPT;
    },
  ));
  return policy;
}
