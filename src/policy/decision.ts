import { ACR_ONE_FACTOR, ACR_TWO_FACTORS, levelOf, satisfies, type Acr } from './levels.ts';

/**
 * The one decision point for "may this account sign in, and how" (docs/flows/login.md,
 * docs/decisions/0024-one-policy-decision-point.md). Every path that authenticates a person, gives
 * an account a credential, or lets a token keep working asks `decide`; nothing else in the code
 * base decides whether an account's status, its managers or the way its session was made allow
 * what is being attempted. It is a pure function: everything it needs is in its input, which
 * `src/policy/policy.ts` loads in one query (or takes from a row the caller already has).
 */

/** How a factor was proven. Connectors (a company's OIDC or SAML provider) and passkeys come later. */
export type Method =
  | 'password'
  | 'trello_password'
  | 'google'
  | 'totp'
  | 'recovery_code'
  /** A one-time code or link sent to the address: sign-up, password reset, a Trello member's new address. */
  | 'email'
  | `connector:${string}`;

/** What is being attempted. */
export type Stage =
  /** The identifier step: which step comes after the address (home-realm discovery later). */
  | 'identify'
  /** A first factor was just proven (password, Trello password, Google, a connector). */
  | 'first_factor'
  /** A second factor was just proven (authenticator code, recovery code). */
  | 'second_factor'
  /** A new account is about to be created at an address. */
  | 'sign_up'
  /** "Forgot password": may a reset link be sent to this account? */
  | 'reset_request'
  /** A reset link was followed: may it set a password on this account? */
  | 'reset_complete'
  /** "I can't use the address on my account": a Trello member proves another address by code. */
  | 'email_recovery'
  /**
   * The owner changes the account's address (settings). A managed account's address belongs to
   * its managers: only an organization's admin changes it (decision 0030).
   */
  | 'email_change'
  /** The owner closes the account (settings). A managed account is deleted by its managers only. */
  | 'close_account'
  /** A sensitive change in settings (password, email, closing, two-step): needs a recent, strong enough login. */
  | 'reauthenticate'
  /** Turning off a factor (two-step verification). */
  | 'disable_factor'
  /** The operator's bulk migration creates (or links to) an account for a Trello member. */
  | 'bulk_migration'
  /**
   * A grant is used at the token endpoint (a refresh token, or the authorization code just
   * issued); `provenance` is how its login was made.
   */
  | 'refresh'
  /**
   * A browser session is used again at /auth (single sign-on): does how it was made still meet
   * the account's policy and the level the relying party asks for (`wantedAcr`)? Refused: the
   * engine's login prompt runs again (src/oidc/provenance.ts).
   */
  | 'session'
  /** An access token reads userinfo. */
  | 'userinfo'
  /** An access token calls one of our APIs on the account's behalf (profile, security events). */
  | 'api';

/**
 * Who manages an account besides its owner (`account_managers`, decision 0030): at most an
 * organization (by a verified domain of the account's address) and a Trello Enterprise (from the
 * legacy import). An organization's rules are those of the authentication policy the account
 * follows there (decision 0033); a Trello Enterprise sets none.
 */
export interface Manager {
  kind: 'organization' | 'trello_enterprise';
  id: string;
  name: string;
  /** The manager's rules for this account; absent when the manager sets none (a Trello Enterprise today). */
  rules?: ManagerRules;
}

export interface ManagerRules {
  /** The authentication policy these rules come from. */
  policy?: string;
  /** Login only through this connector (SSO); absent: email and password (and Google). */
  connector?: string;
  /** Two-step verification required (met by the company's identity provider when `connector` is used). */
  twoStepRequired?: boolean;
  /** Passwords set from now on are at least this long. */
  passwordMinLength?: number;
  /** A password older than this many days must be changed at the next login. */
  passwordMaxAgeDays?: number;
  /** A session or grant unused for this long no longer counts (seconds). */
  idleTimeoutSeconds?: number;
  /** A login older than this no longer counts, however active (seconds). */
  maxSessionSeconds?: number;
  /** Logins made before this instant (seconds since the epoch) no longer count: "sign everyone out". */
  reauthenticateAfter?: number;
}

/** The person or address the decision is about. */
export type Subject =
  /**
   * No account at this address — or the caller must not say whether there is one (identifier
   * step). `managers`: who already manages the address without an account (a Trello member's
   * Enterprise; later an organization by verified domain).
   */
  | { kind: 'address'; email: string; managers?: Manager[] }
  | {
      kind: 'account';
      id: string;
      status: 'active' | 'deactivated' | 'closed';
      /** Closed by its owner and still within the grace period: a full login reopens it. */
      reopenable: boolean;
      hasPassword: boolean;
      twoStepEnabled: boolean;
      /** An operator set "two-step required" on the account. */
      twoStepRequired: boolean;
      managers: Manager[];
      /** The account has a Trello member linked to it (its Trello password never works again). */
      trelloLinked?: boolean;
      /**
       * When its password was last set (seconds since the epoch), when it has one: a manager's
       * `passwordMaxAgeDays` (decision 0039).
       */
      passwordChangedAt?: number;
    };

export type AccountSubject = Extract<Subject, { kind: 'account' }>;

/** How a session or grant was made: RFC 8176 methods, the level reached, when, and through which connector. */
export interface Provenance {
  amr: readonly string[];
  acr: Acr;
  /** Seconds since the epoch. */
  authTime: number;
  connector?: string;
  /** When the session or grant was last used (seconds since the epoch), where it is known: idle timeouts. */
  lastActive?: number;
}

export interface DecisionInput {
  subject: Subject;
  stage: Stage;
  method?: Method;
  /** The relying party, when there is one. */
  client?: { id: string; firstParty: boolean };
  /** How the current session or grant was made (refresh, userinfo, api, reauthenticate, second_factor). */
  provenance?: Provenance;
  /** The level the relying party asked for (`acr_values`); `reauthenticate` asks for the account's own. */
  wantedAcr?: Acr;
  /** Now, in seconds since the epoch (re-authentication freshness). */
  now: number;
  /**
   * `second_factor`: the RFC 8176 methods proven earlier in this login — whether its first
   * factor was the account's password, whose age a manager may limit (decision 0039).
   */
  earlierAmr?: readonly string[];
  /**
   * `first_factor` through a connector whose link to the account its owner proved only now
   * (decision 0086): the identity provider is not yet trusted for the account, so its two-step
   * verification stands for nothing and the account's own second step is asked.
   */
  undelegated?: boolean;
}

/** A reason the person can act on: each is a message code in src/http/messages.ts. */
export type DenyReason =
  | 'policy.account_inactive'
  | 'policy.trello_password_retired'
  | 'policy.two_step_required'
  | 'policy.login_again'
  | 'policy.method_not_allowed';

export type Decision =
  | { outcome: 'allow'; acr?: Acr }
  /** Prove a second factor before going on; `methods` are those the account has. */
  | { outcome: 'second_factor'; methods: ('totp' | 'recovery_code')[] }
  /** Set up a second factor before going on. */
  | { outcome: 'enrol'; factor: 'totp' }
  /** Sign in through this connector instead (a company's identity provider). */
  | { outcome: 'use_connector'; connector: string; manager: string }
  /**
   * The login is proven, but the password it used is older than a manager allows: a new one is
   * set before the login goes on (decision 0039). Asked only once every factor is proven.
   */
  | { outcome: 'change_password'; acr: Acr }
  /** Prove yourself again, by one of `methods` (settings: a recent login is needed). */
  | { outcome: 'reauthenticate'; methods: Method[]; wantedAcr: Acr }
  | { outcome: 'deny'; reason: DenyReason };

/** How recent a login must be for a sensitive change in settings (privileged session). */
export const REAUTHENTICATION_MAX_AGE_SECONDS = 10 * 60;

const FIRST_FACTORS: ReadonlySet<string> = new Set(['password', 'trello_password', 'google']);

/** The connector a manager requires, if any (the first manager that names one). */
function requiredConnector(subject: { managers?: readonly Manager[] | undefined }): { connector: string; manager: string } | undefined {
  const manager = subject.managers?.find((m) => m.rules?.connector);
  return manager?.rules?.connector ? { connector: manager.rules.connector, manager: manager.name } : undefined;
}

/**
 * Two-step verification is required by the operator or by a manager. `delegated`: the login went
 * through the connector the manager requires, whose identity provider does the manager's two-step
 * verification (issue 13: SSO users are not asked again); the operator's requirement still holds.
 */
export function twoStepRequired(subject: AccountSubject, delegated = false): boolean {
  return subject.twoStepRequired || (!delegated && subject.managers.some((m) => m.rules?.twoStepRequired));
}

/** The level the account itself requires of every login and token. */
export function requiredAcr(subject: AccountSubject, delegated = false): Acr {
  return twoStepRequired(subject, delegated) ? ACR_TWO_FACTORS : ACR_ONE_FACTOR;
}

/** The managers' rules that bound how long a login counts: the strictest of each. */
function sessionLimits(subject: AccountSubject): { idle?: number; max?: number; after?: number } {
  const limits: { idle?: number; max?: number; after?: number } = {};
  for (const { rules } of subject.managers) {
    if (!rules) continue;
    if (rules.idleTimeoutSeconds) limits.idle = Math.min(limits.idle ?? Infinity, rules.idleTimeoutSeconds);
    if (rules.maxSessionSeconds) limits.max = Math.min(limits.max ?? Infinity, rules.maxSessionSeconds);
    if (rules.reauthenticateAfter) limits.after = Math.max(limits.after ?? 0, rules.reauthenticateAfter);
  }
  return limits;
}

/**
 * The shortest password a manager allows for this subject (an account, or an address on a
 * domain whose default policy sets one); 0 when no manager sets one. The operator's own minimum
 * (PASSWORD_MIN_LENGTH) still applies on top of it.
 */
export function passwordMinLength(subject: Subject): number {
  return Math.max(0, ...(subject.managers ?? []).map((m) => m.rules?.passwordMinLength ?? 0));
}

/** Whether the account's password is older than a manager allows (the strictest `passwordMaxAgeDays`). */
export function passwordExpired(subject: AccountSubject, now: number): boolean {
  if (!subject.hasPassword || subject.passwordChangedAt === undefined) return false;
  const days = Math.min(Infinity, ...subject.managers.map((m) => m.rules?.passwordMaxAgeDays ?? Infinity));
  return Number.isFinite(days) && now - subject.passwordChangedAt > days * 86_400;
}

/** A login that would be allowed, held back while its password is older than a manager allows. */
function unlessPasswordExpired(decision: Decision, subject: AccountSubject, usedPassword: boolean, now: number): Decision {
  if (decision.outcome !== 'allow' || !usedPassword || !passwordExpired(subject, now)) return decision;
  return { outcome: 'change_password', acr: decision.acr ?? ACR_ONE_FACTOR };
}

/**
 * The idle timeout the account's managers set (the strictest), in seconds; undefined when none
 * does. Callers read when a session was last used only then (`provenance.lastActive`).
 */
export function idleTimeoutOf(subject: AccountSubject): number | undefined {
  return sessionLimits(subject).idle;
}

/** The methods this account can prove itself with now (for re-authentication). */
export function methodsOf(subject: AccountSubject): Method[] {
  const sso = requiredConnector(subject);
  if (sso) return [`connector:${sso.connector}`];
  return subject.hasPassword ? ['password', 'google'] : ['google'];
}

/** A login may proceed with this account's status (a reopenable closure is reopened at completion). */
function usable(subject: AccountSubject): boolean {
  return subject.status === 'active' || (subject.status === 'closed' && subject.reopenable);
}

/**
 * After a first factor: a second one, enrolment, or done. `delegated`: proven through the
 * connector the account's manager requires — its identity provider did the manager's two-step
 * verification, so ours is not asked for again unless the operator or the relying party wants it.
 */
function afterFirstFactor(subject: AccountSubject, wanted: Acr | undefined, delegated = false): Decision {
  const moreWanted = wanted !== undefined && !satisfies(ACR_ONE_FACTOR, wanted);
  if (delegated && !subject.twoStepRequired && !moreWanted) return { outcome: 'allow' };
  if (subject.twoStepEnabled) return { outcome: 'second_factor', methods: ['totp', 'recovery_code'] };
  // Required by the account's policy, or asked for by the relying party (a Jira admin page may
  // want two factors): the person sets it up now rather than being turned away.
  if (twoStepRequired(subject, delegated) || moreWanted) return { outcome: 'enrol', factor: 'totp' };
  return { outcome: 'allow', acr: ACR_ONE_FACTOR };
}

/** Whether how a grant or session was made still meets what the account requires now. */
function provenanceHolds(subject: AccountSubject, provenance: Provenance | undefined, now: number): Decision {
  const sso = requiredConnector(subject);
  if (sso && provenance?.connector !== sso.connector) return { outcome: 'deny', reason: 'policy.login_again' };
  if (!satisfies(provenance?.acr ?? ACR_ONE_FACTOR, requiredAcr(subject, Boolean(sso)))) return { outcome: 'deny', reason: 'policy.login_again' };
  // The manager's session rules (decision 0033): "sign everyone out", a maximum lifetime, an idle timeout.
  const limits = sessionLimits(subject);
  const authTime = provenance?.authTime ?? 0;
  if (limits.after !== undefined && authTime < limits.after) return { outcome: 'deny', reason: 'policy.login_again' };
  if (limits.max !== undefined && now - authTime > limits.max) return { outcome: 'deny', reason: 'policy.login_again' };
  if (limits.idle !== undefined && provenance?.lastActive !== undefined && now - provenance.lastActive > limits.idle) return { outcome: 'deny', reason: 'policy.login_again' };
  return { outcome: 'allow', acr: provenance?.acr ?? ACR_ONE_FACTOR };
}

export function decide(input: DecisionInput): Decision {
  const { subject, stage, method, provenance } = input;

  if (subject.kind === 'address') {
    // No account (or none the caller may reveal): the answer is the one a password account gets,
    // so the identifier step tells nothing — unless the address is on a domain an organization
    // verified and its default policy requires SSO (home-realm discovery): then every address on
    // that domain, account or not, is sent to the company's identity provider.
    const domainSso = requiredConnector(subject);
    switch (stage) {
      case 'identify':
        return domainSso ? { outcome: 'use_connector', ...domainSso } : { outcome: 'allow' };
      case 'sign_up':
        // On such a domain accounts are created by the company's identity provider (just in time), not by sign-up.
        if (domainSso && method !== `connector:${domainSso.connector}`) return { outcome: 'use_connector', ...domainSso };
        return { outcome: 'allow' };
      case 'reset_request':
        // Every address on such a domain is answered alike, account or not: "use your company's sign-in".
        return domainSso ? { outcome: 'use_connector', ...domainSso } : { outcome: 'allow' };
      case 'bulk_migration':
        return { outcome: 'allow' };
      case 'email_recovery':
        // An address a manager owns is changed by that manager only (a Trello Enterprise's member).
        return subject.managers?.length ? { outcome: 'deny', reason: 'policy.method_not_allowed' } : { outcome: 'allow' };
      case 'first_factor':
        // A legacy Trello member without an account here proves itself with its Trello password;
        // its review then creates (or links) the account. No other first factor exists without one.
        // On a domain that requires SSO, the member migrates through the SSO login instead.
        if (method === 'trello_password' && domainSso) return { outcome: 'use_connector', ...domainSso };
        return method === 'trello_password' ? { outcome: 'allow' } : { outcome: 'deny', reason: 'policy.account_inactive' };
      default:
        return { outcome: 'deny', reason: 'policy.account_inactive' };
    }
  }

  const sso = requiredConnector(subject);
  switch (stage) {
    case 'identify':
      // Deliberately the same for every state an address can be in, until SSO requires otherwise.
      return sso ? { outcome: 'use_connector', ...sso } : { outcome: 'allow' };

    case 'first_factor': {
      if (!method || !FIRST_FACTORS.has(method) && !method.startsWith('connector:')) return { outcome: 'deny', reason: 'policy.method_not_allowed' };
      if (!usable(subject)) return { outcome: 'deny', reason: 'policy.account_inactive' };
      if (sso && method !== `connector:${sso.connector}`) return { outcome: 'use_connector', ...sso };
      // Once a member is linked its Trello password never works again (linking is irreversible).
      if (method === 'trello_password' && subject.trelloLinked) return { outcome: 'deny', reason: 'policy.trello_password_retired' };
      // A password older than a manager allows is replaced once the login is otherwise complete
      // — after the second factor when there is one, so the password alone never gets to set one.
      return unlessPasswordExpired(afterFirstFactor(subject, input.wantedAcr, Boolean(sso) && !input.undelegated), subject, method === 'password', input.now);
    }

    case 'second_factor':
      if (method !== 'totp' && method !== 'recovery_code') return { outcome: 'deny', reason: 'policy.method_not_allowed' };
      if (!usable(subject)) return { outcome: 'deny', reason: 'policy.account_inactive' };
      return unlessPasswordExpired({ outcome: 'allow', acr: ACR_TWO_FACTORS }, subject, Boolean(input.earlierAmr?.includes('pwd')), input.now);

    case 'sign_up':
      // The address already has an account: sign-up never reveals it (the flow mails the owner).
      return { outcome: 'deny', reason: 'policy.method_not_allowed' };

    case 'reset_request':
    case 'reset_complete':
      // An owner who closed the account and forgot the password may still reset it within the
      // grace period: the reset only sets the password, the login that follows reopens it.
      if (!usable(subject)) return { outcome: 'deny', reason: 'policy.account_inactive' };
      // An account that must use its company's identity provider has no password to reset.
      if (sso) return { outcome: 'use_connector', ...sso };
      return { outcome: 'allow' };

    case 'email_recovery':
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      // A managed account's address belongs to its manager: only the manager changes it.
      if (subject.managers.length) return { outcome: 'deny', reason: 'policy.method_not_allowed' };
      return { outcome: 'allow' };

    case 'email_change':
    case 'close_account':
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      // The address (and the account) belong to whoever manages it: each manager's restriction
      // applies, a Trello Enterprise's after linking as much as before. Only its managers may do
      // this (the services say so as `account.managed`, "ask your admin").
      if (subject.managers.length) return { outcome: 'deny', reason: 'policy.method_not_allowed' };
      return { outcome: 'allow' };

    case 'reauthenticate': {
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      const required = requiredAcr(subject, Boolean(sso));
      const wanted = input.wantedAcr && satisfies(input.wantedAcr, required) ? input.wantedAcr : required;
      const recent = provenance && input.now - provenance.authTime <= REAUTHENTICATION_MAX_AGE_SECONDS;
      const holds = provenanceHolds(subject, provenance, input.now);
      if (recent && holds.outcome === 'allow' && satisfies(provenance.acr, wanted)) return { outcome: 'allow', acr: provenance.acr };
      return { outcome: 'reauthenticate', methods: methodsOf(subject), wantedAcr: wanted };
    }

    case 'disable_factor': {
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      if (twoStepRequired(subject)) return { outcome: 'deny', reason: 'policy.two_step_required' };
      return decide({ ...input, stage: 'reauthenticate', wantedAcr: subject.twoStepEnabled ? ACR_TWO_FACTORS : undefined });
    }

    case 'bulk_migration':
      // Bulk migration links members to accounts that can still be used; a deactivated account
      // stays as its manager left it.
      return subject.status === 'active' ? { outcome: 'allow' } : { outcome: 'deny', reason: 'policy.account_inactive' };

    case 'refresh':
    case 'userinfo':
    case 'api':
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      return provenanceHolds(subject, provenance, input.now);

    case 'session': {
      if (subject.status !== 'active') return { outcome: 'deny', reason: 'policy.account_inactive' };
      const holds = provenanceHolds(subject, provenance, input.now);
      if (holds.outcome !== 'allow') return holds;
      // The relying party asks for more than this session proved (acr_values, OIDC Core §3.1.2.1).
      if (input.wantedAcr && !satisfies(provenance?.acr ?? ACR_ONE_FACTOR, input.wantedAcr)) return { outcome: 'deny', reason: 'policy.login_again' };
      return holds;
    }
  }
}

/**
 * The `amr` value that names the connector a login went through (decision 0034). The engine keeps
 * `amr` on the session and copies it to every code and refresh token, so the connector reaches
 * every later check (refresh, userinfo, a reused session) with no table and no extra write, as
 * the level does (decision 0025). Relying parties see it too: one opaque id, and RFC 8176 §2
 * leaves values beyond its registry to the parties' agreement.
 */
const CONNECTOR_AMR = 'sso:';
export const connectorAmr = (connectorId: string) => `${CONNECTOR_AMR}${connectorId}`;
const connectorOf = (amr: readonly string[]) => amr.find((v) => v.startsWith(CONNECTOR_AMR))?.slice(CONNECTOR_AMR.length) || undefined;

/**
 * Provenance from what the engine stores with a session, grant or token (amr, acr, auth_time).
 * A login recorded before levels existed has amr only: its level follows from it. The connector
 * is read from `amr` (connectorAmr) unless given.
 */
export function provenanceFrom(stored: { amr?: readonly string[] | undefined; acr?: string | undefined; authTime?: number | undefined; connector?: string | undefined } | undefined): Provenance | undefined {
  if (!stored?.amr && !stored?.acr) return undefined;
  const amr = [...(stored.amr ?? [])];
  const acr = stored.acr === ACR_TWO_FACTORS || levelOf(amr) === ACR_TWO_FACTORS ? ACR_TWO_FACTORS : ACR_ONE_FACTOR;
  const connector = stored.connector ?? connectorOf(amr);
  return { amr, acr, authTime: stored.authTime ?? 0, ...(connector ? { connector } : {}) };
}
