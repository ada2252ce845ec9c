import type { AccountRow } from '../persistence/queries/accounts.ts';
import { releasedPictureUrl } from './avatars.ts';

/**
 * What a relying party receives about the person, and how the consent page says it
 * (docs/decisions/0010-profile-visibility.md, "Revised"). One function computes both, so the page
 * and the tokens cannot disagree: the consent page lists exactly the details `releaseClaims`
 * returns for the scopes and claims being asked, and findAccount's claims() returns exactly the
 * same details for the scopes and claims granted.
 *
 * Profile visibility does not enter here: it governs what other people see (`/api/profiles/:id`,
 * avatars). For a relying party the person's decision is the grant — given on the consent page
 * for a third-party client, implied by using our own products for a first-party one.
 */

/**
 * Claims each scope releases (OIDC Core §5.4, plus our profile fields). The engine's `claims`
 * configuration is built from this table, so the engine's filtering and ours match.
 * `amr` (RFC 8176) comes from the session, not the account; `trello_member_id` only goes to the
 * Trello client.
 */
export const SCOPE_CLAIMS = {
  openid: ['sub', 'amr', 'trello_member_id'],
  email: ['email', 'email_verified'],
  profile: ['name', 'nickname', 'picture', 'locale', 'zoneinfo', 'updated_at', 'job_title', 'department', 'organization', 'location'],
} as const satisfies Record<string, readonly string[]>;

type ScopeWithClaims = keyof typeof SCOPE_CLAIMS;
const CLAIM_SCOPE = new Map<string, ScopeWithClaims>(
  (Object.entries(SCOPE_CLAIMS) as [ScopeWithClaims, readonly string[]][]).flatMap(([scope, claims]) => claims.map((claim) => [claim, scope] as const)),
);

/**
 * The scope of the organizations management API (docs/flows/organizations.md "Management API",
 * decision 0032). It releases nothing about the person: it lets the client act as them on
 * `/api/organizations/*`, for the organizations they administer and only while they are an
 * admin there (the organization services check that at every call).
 */
export const MANAGE_ORGANIZATIONS_SCOPE = 'organizations:manage';

/** Scopes that authorize our own APIs rather than release claims (the engine advertises them). */
export const API_SCOPES = [MANAGE_ORGANIZATIONS_SCOPE] as const;

/** What each scope lets a client do, in the words the consent page uses. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are when you log in',
  profile: 'See your profile',
  email: 'See your email address',
  offline_access: 'Keep access to this information when you’re not using it',
  // An admin's powers, said in full: the person allows an app to do as they could in the console.
  [MANAGE_ORGANIZATIONS_SCOPE]: 'Manage the organizations you administer, as you: verify and remove their domains, claim the accounts on them, edit, deactivate and delete the accounts they manage, invite and remove admins, and read their audit log',
};

/** A granted scope as the person reads it (the consent page's words), for "Connected apps". */
export function describeScope(scope: string): string {
  return SCOPE_TEXT[scope] ?? scope;
}

/** Each claim as the person reads it. */
const CLAIM_LABEL: Record<string, string> = {
  sub: 'An identifier for your account',
  amr: 'How you logged in (password, code from your app …)',
  trello_member_id: 'Your Trello account',
  email: 'Email address',
  email_verified: 'Whether your email address is verified',
  name: 'Name',
  nickname: 'Nickname',
  picture: 'Picture',
  locale: 'Language',
  zoneinfo: 'Time zone',
  updated_at: 'When you last changed your profile',
  job_title: 'Job title',
  department: 'Department',
  organization: 'Organization',
  location: 'Based in',
};

/** Claims the engine adds itself (from the session or the protocol), never from the account. */
const PROTOCOL_CLAIMS = new Set(['amr']);

export interface ReleasedDetail {
  claim: string;
  label: string;
  /** The value as the person reads it; absent for identifiers and links. */
  shown?: string;
}

export interface ReleaseItem {
  /** A scope, or `claims` for claims asked one by one (OIDC Core §5.5). */
  scope: string;
  text: string;
  details: ReleasedDetail[];
}

export interface Release {
  /** What the consent page lists. */
  items: ReleaseItem[];
  /** The claims for the engine (it masks them again by the grant; OIDC Core §5.4). */
  claims: Record<string, unknown>;
}

export interface ReleaseRequest {
  /** Scopes asked for (consent) or granted (tokens). */
  scopes: readonly string[];
  /** Claims asked for one by one with the `claims` parameter (OIDC Core §5.5). */
  claims?: readonly string[];
  /** Claims the person refused. */
  rejected?: readonly string[];
  /** The picture's address as released (`releasedPictureUrl`, src/identity/avatars.ts). */
  pictureUrl: string;
  /** The Trello member of the account, when the client is Trello's. */
  trelloMemberId?: string | undefined;
}

/** The value of `claim` for `account`, or undefined when there is none to release. */
function valueOf(account: AccountRow, claim: string, request: ReleaseRequest): unknown {
  switch (claim) {
    case 'sub': return account.id;
    case 'trello_member_id': return request.trelloMemberId;
    case 'email': return account.email;
    case 'email_verified': return account.email_verified;
    case 'picture': return request.pictureUrl;
    case 'organization': return account.organization_name ?? undefined;
    case 'updated_at': return Math.floor(account.updated_at.getTime() / 1000);
    case 'name': case 'nickname': case 'locale': case 'zoneinfo': case 'job_title': case 'department': case 'location':
      return account[claim] || undefined;
    default: return undefined;
  }
}

function shownValue(claim: string, value: unknown): string | undefined {
  if (claim === 'email_verified') return value ? 'verified' : 'not verified';
  if (claim === 'sub' || claim === 'picture' || claim === 'updated_at' || claim === 'trello_member_id') return undefined;
  return typeof value === 'string' ? value : undefined;
}

/**
 * The details of `account` a relying party receives for `request`, grouped for the consent page.
 * A detail without a value (no job title yet) is neither listed nor released.
 */
export function releaseClaims(account: AccountRow, request: ReleaseRequest): Release {
  const rejected = new Set(request.rejected ?? []);
  const claims: Record<string, unknown> = {};
  const items: ReleaseItem[] = [];
  const listed = new Set<string>();

  const detailsFor = (names: readonly string[]): ReleasedDetail[] => {
    const details: ReleasedDetail[] = [];
    for (const claim of names) {
      if (listed.has(claim) || rejected.has(claim) || !CLAIM_SCOPE.has(claim)) continue;
      if (PROTOCOL_CLAIMS.has(claim)) {
        listed.add(claim);
        details.push({ claim, label: CLAIM_LABEL[claim]! });
        continue;
      }
      const value = valueOf(account, claim, request);
      if (value === undefined || value === null) continue;
      listed.add(claim);
      claims[claim] = value;
      const shown = shownValue(claim, value);
      details.push({ claim, label: CLAIM_LABEL[claim]!, ...(shown === undefined ? {} : { shown }) });
    }
    return details;
  };

  for (const scope of new Set(request.scopes)) {
    if (!scope) continue;
    const names = (SCOPE_CLAIMS as Record<string, readonly string[]>)[scope] ?? [];
    items.push({ scope, text: SCOPE_TEXT[scope] ?? `Use the “${scope}” permission`, details: detailsFor(names) });
  }
  const single = detailsFor(request.claims ?? []);
  if (single.length) items.push({ scope: 'claims', text: 'See these details', details: single });
  return { items, claims };
}

/**
 * Only the claims `releaseClaims` returns for `request`, without the consent page's listing: what
 * the tokens and userinfo carry, on every call of the engine's `claims()` (issue 14: the listing's
 * labels and groups were built and thrown away on each userinfo request). The same rules in the
 * same order — test/unit/identity/claims-release.test.ts checks the two agree on every scope and
 * claim combination.
 */
export function releasedClaims(account: AccountRow, request: ReleaseRequest): Record<string, unknown> {
  const rejected = request.rejected?.length ? new Set(request.rejected) : undefined;
  const claims: Record<string, unknown> = {};
  const add = (names: readonly string[]) => {
    for (const claim of names) {
      if (!CLAIM_SCOPE.has(claim) || PROTOCOL_CLAIMS.has(claim) || Object.hasOwn(claims, claim) || rejected?.has(claim)) continue;
      const value = valueOf(account, claim, request);
      if (value !== undefined && value !== null) claims[claim] = value;
    }
  };
  for (const scope of request.scopes) if (scope) add((SCOPE_CLAIMS as Record<string, readonly string[]>)[scope] ?? []);
  add(request.claims ?? []);
  return claims;
}

/**
 * `releaseClaims` with what it needs from elsewhere: the avatar address under the issuer, and the
 * Trello member, looked up only for the Trello client. The token side (findAccount) and the
 * consent page both go through this.
 */
export function createClaimsRelease(deps: { issuer: string; pictureKey: Buffer; trelloClientId: string | undefined; trelloMemberId: (accountId: string) => Promise<string | undefined> }) {
  const wantsMember = (clientId: string | undefined, request: Pick<ReleaseRequest, 'scopes' | 'claims'>) => clientId !== undefined && clientId === deps.trelloClientId
    && [...request.scopes, ...(request.claims ?? [])].some((name) => name === 'openid' || name === 'trello_member_id');
  const full = async (account: AccountRow, clientId: string | undefined, request: Pick<ReleaseRequest, 'scopes' | 'claims' | 'rejected'>): Promise<ReleaseRequest> => ({
    ...request,
    // Made only when the picture is among what is released (not on every userinfo of `openid` alone).
    get pictureUrl() {
      return releasedPictureUrl(deps.pictureKey, deps.issuer, account);
    },
    trelloMemberId: wantsMember(clientId, request) ? await deps.trelloMemberId(account.id) : undefined,
  });
  return {
    /** The consent page's listing and the claims. */
    async forClient(account: AccountRow, clientId: string | undefined, request: Pick<ReleaseRequest, 'scopes' | 'claims' | 'rejected'>): Promise<Release> {
      return releaseClaims(account, await full(account, clientId, request));
    },
    /** The claims alone (`releasedClaims`): the token side. */
    async claimsForClient(account: AccountRow, clientId: string | undefined, request: Pick<ReleaseRequest, 'scopes' | 'claims' | 'rejected'>): Promise<Record<string, unknown>> {
      return releasedClaims(account, await full(account, clientId, request));
    },
  };
}

export type ClaimsRelease = ReturnType<typeof createClaimsRelease>;
