import type { Middleware } from 'koa';
import { AppError, UNAVAILABLE_RETRY_AFTER_SECONDS } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { logError, normalise } from '../../http/error-handler.ts';
import type { OrganizationService } from '../../organizations/organizations.ts';
import type { ManagedAccounts } from '../../organizations/managed-accounts.ts';
import type { InvitationService } from '../../organizations/invitations.ts';

/**
 * The management API's errors (docs/flows/organizations.md "Management API", decision 0032):
 * one JSON shape for every refusal, its own and the ones from below (body parsing, a database
 * that does not answer, a bug):
 *
 *   { "error": "<code>", "error_description": "<for the developer>", …details, "request_id": "…" }
 *
 * `error` is the organization services' own code (`domain.taken`, `account.not_found` …), or
 * RFC 6750 §3.1's `invalid_token` / `insufficient_scope` for the access token, or `request.*` /
 * `server.*` for the request itself. Never a stack trace: anything unexpected is `server.error`
 * with the request id, logged with the error.
 */

/** The refusals a service method can answer. */
type ProblemOf<F> = F extends (...args: never[]) => Promise<infer R> ? (R extends { ok: false; problem: infer P } ? P : never) : never;

/** Every refusal of the services the API calls: the table below must name each (the type check says when one is added). */
export type ServiceProblem =
  | ProblemOf<OrganizationService['dashboard']> | ProblemOf<OrganizationService['addDomain']> | ProblemOf<OrganizationService['listDomains']>
  | ProblemOf<OrganizationService['domainState']> | ProblemOf<OrganizationService['verifyDomain']> | ProblemOf<OrganizationService['removeDomain']>
  | ProblemOf<OrganizationService['admins']> | ProblemOf<OrganizationService['removeAdmin']> | ProblemOf<OrganizationService['auditPage']>
  | ProblemOf<OrganizationService['auditExport']> | ProblemOf<OrganizationService['rename']> | ProblemOf<OrganizationService['remove']>
  | ProblemOf<ManagedAccounts['get']> | ProblemOf<ManagedAccounts['list']> | ProblemOf<ManagedAccounts['exportCsv']>
  | ProblemOf<ManagedAccounts['previewClaim']> | ProblemOf<ManagedAccounts['claim']> | ProblemOf<ManagedAccounts['update']>
  | ProblemOf<ManagedAccounts['deactivate']> | ProblemOf<ManagedAccounts['reactivate']> | ProblemOf<ManagedAccounts['delete']>
  | ProblemOf<ManagedAccounts['cancelDeletion']>
  | ProblemOf<InvitationService['invite']> | ProblemOf<InvitationService['listOpen']> | ProblemOf<InvitationService['revoke']>;

type RequestProblem =
  | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication'
  | 'request.invalid_body' | 'request.invalid_query' | 'request.unsupported_media_type' | 'request.too_large' | 'request.field_too_long'
  | 'request.invalid_characters' | 'request.unsupported_encoding' | 'request.not_found' | 'request.method_not_allowed' | 'request.concurrent_change'
  | 'server.error' | 'server.unavailable';

export type ApiProblem = ServiceProblem | RequestProblem;

/**
 * Status and description of each code. 400: the input is wrong, whatever the state; 404: no such
 * thing *for this admin* — another organization's domain, account or invitation answers exactly
 * like one that does not exist, so ids cannot be probed; 409: the input is fine but the state
 * refuses it now (a domain held by someone else, not verified yet, the last admin …).
 */
const PROBLEMS: Record<ApiProblem, readonly [status: number, description: string]> = {
  invalid_token: [401, 'The access token is missing, unknown, expired or revoked, or the sign-in it came from no longer meets the account’s policy (two-step verification became required, the account was deactivated). Get a new token.'],
  insufficient_user_authentication: [401, 'This call cannot be undone: it needs a sign-in from the last few minutes (max_age) at the account’s level (acr_values). Send the user through a new authorization request with those parameters (RFC 9470), then call again with the new token.'],
  insufficient_scope: [403, 'The access token was not granted the scope this API needs (see the scope member): ask for it in the authorization request.'],
  'request.invalid_body': [400, 'The JSON body does not have the expected members (see fields): check the types and the lengths.'],
  'request.invalid_query': [400, 'The query string does not have the expected parameters (see fields): limit is 1–100, cursor is the previous page’s next, unknown parameters are refused.'],
  'request.unsupported_media_type': [415, 'Send the body as JSON (Content-Type: application/json).'],
  'request.too_large': [413, 'The body is larger than this API accepts (16 KiB).'],
  'request.field_too_long': [400, 'A member of the body is longer than accepted (see fields).'],
  'request.invalid_characters': [400, 'The request contains a NUL character or bytes that are not UTF-8.'],
  'request.unsupported_encoding': [415, 'Send the body uncompressed (no Content-Encoding).'],
  'request.not_found': [404, 'There is no such endpoint.'],
  'request.concurrent_change': [409, 'Another change to the same organization was made at the same moment and this one was not stored. Send it again.'],
  'request.method_not_allowed': [405, 'This endpoint does not accept this method (see the Allow header).'],
  'server.error': [500, 'Something went wrong on our side. Retry later; quote the request_id if it persists.'],
  'server.unavailable': [503, 'The service cannot reach its data store just now. Retry after the Retry-After delay.'],

  'account.inactive': [401, 'The token’s account is not active.'],
  'organization.not_found': [404, 'No such organization, or the token’s account is not one of its members.'],
  'organization.forbidden': [403, 'The token’s account is a member of this organization but not one of its admins.'],
  'organization.name_invalid': [400, 'Give the organization a name of 1–100 visible characters, without control or direction-changing characters.'],
  'organization.manages_accounts': [409, 'The organization manages accounts: deleting it releases them. Ask for it with release=true.'],
  'release.deactivated_accounts': [409, 'Some of the accounts to release are deactivated (see deactivated): released, nobody could reactivate them. Reactivate or delete them first.'],
  'domain.empty': [400, 'Give the domain to add (member domain).'],
  'domain.malformed': [400, 'That is not a domain name: give a name only, like example.com — no scheme, path, port, @, _ or %-escape.'],
  'domain.ip_address': [400, 'IP addresses cannot be verified: give a domain name.'],
  'domain.single_label': [400, 'A domain needs at least two labels, like example.com.'],
  'domain.too_long': [400, 'A domain name has at most 253 characters.'],
  'domain.public_email': [400, 'The domain belongs to a public email provider: its addresses are people’s own, not an organization’s.'],
  'domain.public_suffix': [400, 'The domain is a public suffix (co.uk, github.io …): anyone can register names under it, so it cannot be verified. Give your own domain under it.'],
  'domain.taken': [409, 'Another organization holds this domain (verified, or failing its re-check).'],
  'domain.limit': [409, 'The organization already has 50 domains: remove one first.'],
  'domain.not_found': [404, 'No such domain in this organization.'],
  'domain.manages_accounts': [409, 'The domain manages accounts: removing it releases them. Ask for it with release=true.'],
  'domain.not_verified': [409, 'The domain is not verified yet: verify it before claiming its accounts.'],
  'domain.claims_frozen': [409, 'The domain’s last re-check failed: it claims nothing new until it passes again (verify it now to retry).'],
  'verification.wrong_token': [409, 'A verification record or file is there, but it holds another token: publish the one in domain.instructions (see checks).'],
  'verification.dns_error': [409, 'The domain’s DNS lookup failed (server failure or time-out): retry in a few minutes (see checks).'],
  'verification.not_found': [409, 'Neither the TXT record nor the file holds the token yet: publish it, then retry (DNS changes can take a while; see checks).'],
  'verification.http_error': [409, 'The verification file could not be fetched (see checks): refused, TLS, status, redirect, size, time-out or a private address.'],
  'verification.throttled': [429, 'Too many verification attempts for this domain or by this admin: retry after the Retry-After delay (also retry_after, in seconds).'],
  'account.not_found': [404, 'No such account managed by this organization.'],
  'account.admin': [409, 'The account is an admin of this organization: remove them as an admin first (at least one active admin must remain).'],
  'account.self': [403, 'Admins cannot act on their own account through the organization: use the account’s own settings.'],
  'account.state': [409, 'The account is not in a state that allows this (deactivating a deactivated account, cancelling a deletion that is not pending …).'],
  'account.name_invalid': [400, 'A name has 1–200 characters, something visible, and no control, format (zero-width, bidirectional) or unassigned characters (null or "" clears it).'],
  'login.invalid_email': [400, 'That is not a valid email address.'],
  'email.same': [409, 'That is already the account’s address.'],
  'email.domain_not_verified': [409, 'An address may only move to another domain this organization has verified.'],
  'signup.email_taken': [409, 'That address already belongs to an account, or is reserved for one.'],
  'list.invalid': [400, 'q is at most 320 characters and status one of active, deactivated, pending_deletion.'],
  'invitation.email_invalid': [400, 'Give a valid email address to invite (member email).'],
  'invitation.already_admin': [409, 'That address belongs to one of this organization’s admins.'],
  'invitation.limit': [409, 'The organization has 50 open invitations: revoke some first.'],
  'invitation.throttled': [429, 'Too many invitations to this address or by this admin: retry after the Retry-After delay (also retry_after, in seconds). Invitation mail is limited so nobody can be flooded with it.'],
  'invitation.not_found': [404, 'No such open invitation in this organization (accepted, revoked or replaced meanwhile).'],
  'admin.not_found': [404, 'That account is not an admin of this organization.'],
  'admin.last': [409, 'This is the organization’s last admin: invite another admin first.'],
};

const known = (code: string): code is ApiProblem => Object.hasOwn(PROBLEMS, code);

/**
 * The error to throw for `code`. `details` become members of the answer (a verification's
 * checks, the fields that failed); `challenge` is the WWW-Authenticate header (RFC 6750 §3).
 */
export function apiError(code: ApiProblem, details: Record<string, unknown> = {}, challenge?: string): AppError {
  return new AppError(code, PROBLEMS[code][0], { details: { ...details, ...(challenge ? { challenge } : {}) } });
}

/**
 * Answers every error below it in the API's JSON shape, and 404/405 for paths and methods no route
 * takes. Runs inside the app's error handler, so only a failure of this function itself would
 * reach that one.
 */
export function apiErrors(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw apiError('request.not_found');
      // A router's 405 keeps its Allow header and gets our body.
      if (ctx.status === 405 && ctx.body == null) throw apiError('request.method_not_allowed');
    } catch (thrown) {
      const err = normalise(thrown);
      logError(ctx.state.log as Logger | undefined, thrown, err);
      // A code no table names (a 4xx from a library) is answered as the status's nearest one.
      const code: ApiProblem = known(err.code) ? err.code : err.status >= 500 ? 'server.error' : 'request.invalid_body';
      const { challenge, ...details } = err.details ?? {};
      ctx.status = err.status;
      if (err.status === 503) ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      // A throttle's wait (RFC 6585 §4, RFC 9110 §10.2.3): the header, and retry_after in the body.
      if (err.status === 429 && typeof details.retry_after === 'number') ctx.set('Retry-After', String(details.retry_after));
      if (typeof challenge === 'string') ctx.set('WWW-Authenticate', challenge);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: code, error_description: PROBLEMS[code][1], ...(err.status < 500 ? details : {}), request_id: ctx.state.requestId ?? null };
    }
  };
}
