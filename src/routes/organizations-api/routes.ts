import { Readable } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import { bodyParser } from '@koa/bodyparser';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import type { OrganizationService } from '../../organizations/organizations.ts';
import type { ManagedAccounts } from '../../organizations/managed-accounts.ts';
import type { InvitationService } from '../../organizations/invitations.ts';
import { AUDIT_CSV_HEADER, auditCsvRecord } from '../../organizations/admin-audit.ts';
import { MANAGE_ORGANIZATIONS_SCOPE } from '../../identity/claims-release.ts';
import { identityEncodingOnly } from '../../http/input-guards.ts';
import { requestMeta } from '../../http/request-meta.ts';
import { actorOf, bearerWithScope, requireRecentLogin } from './bearer-scope.ts';
import { apiError, type ServiceProblem } from './errors.ts';
import { accountsExportQuery, accountsQuery, accountUpdate, auditQuery, domainInput, invitationInput, noQuery, organizationUpdate, releaseQuery, pageQuery, parseBody, parseQuery } from './schema.ts';

export interface OrganizationsApiDeps {
  sessions: Pick<BrowserSessions, 'bearer'>;
  organizations: OrganizationService;
  managedAccounts: ManagedAccounts;
  invitations: InvitationService;
}

/** Base path of every endpoint. */
export const ORGANIZATIONS_API = '/api/organizations';

/** A service's answer: its value when it succeeded, else the API error for its problem. */
function ok<R extends { ok: true } | { ok: false; problem: ServiceProblem }>(result: R, details: (failed: Extract<R, { ok: false }>) => Record<string, unknown> = () => ({})): Extract<R, { ok: true }> {
  if (!result.ok) {
    // A throttled call carries its wait: 429 with Retry-After (errors.ts).
    const wait = (result as { retryAfterSeconds?: number }).retryAfterSeconds;
    throw apiError((result as { problem: ServiceProblem }).problem, { ...details(result as Extract<R, { ok: false }>), ...(wait === undefined ? {} : { retry_after: wait }) });
  }
  return result as Extract<R, { ok: true }>;
}

/** A refused release says how many deactivated accounts stand in its way. */
const released = (failed: { deactivated?: number }) => (failed.deactivated === undefined ? {} : { deactivated: failed.deactivated });

const idPart = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, '');

/**
 * The organizations management API (docs/flows/organizations.md "Management API", decision
 * 0032): JSON over the same services as the admin console, for an admin acting through an OAuth
 * client with the `organizations:manage` scope. The services authorize every call (the token's
 * account must be an admin of the organization in the path) and write the audit trail; this
 * layer checks the token, the shape of the input, and maps each service problem to a status.
 * Cookies are never read (see bearer-scope.ts).
 */
export function organizationsApiRoutes(deps: OrganizationsApiDeps): Router {
  const { organizations, managedAccounts: managed, invitations } = deps;
  const router = new Router({ prefix: ORGANIZATIONS_API });

  // The token first: nothing of an unauthenticated request is parsed. Bodies: JSON only, 16 KiB.
  router.use(bearerWithScope(deps.sessions, MANAGE_ORGANIZATIONS_SCOPE));
  router.use(identityEncodingOnly());
  router.use(bodyParser({ enableTypes: ['json'], jsonLimit: '16kb', encoding: 'utf-8' }));
  router.use(async (ctx, next) => {
    // Personal data and one-time state: never stored by a cache (RFC 9111 §5.2.2.5).
    ctx.set('Cache-Control', 'no-store');
    await next();
  });

  const me = (ctx: Context) => actorOf(ctx).accountId;
  // The audit trail's "who": the admin, by way of this client (organization_events.detail.clientId).
  const meta = (ctx: Context) => requestMeta(ctx, actorOf(ctx).clientId);
  const org = (ctx: Context) => ctx.params.organizationId!;
  const json = (ctx: Context, status: number, body: unknown) => {
    ctx.status = status;
    ctx.body = body;
  };
  const csv = (ctx: Context, name: string, body: string | Readable) => {
    ctx.status = 200;
    ctx.type = 'text/csv; charset=utf-8; header=present';
    ctx.set('Content-Disposition', `attachment; filename="${name}"`);
    ctx.body = body;
  };

  // ---- Organizations ---------------------------------------------------------------------------

  router.get('/', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { organizations: await organizations.listFor(me(ctx)) });
  });

  router.get('/:organizationId', async (ctx) => {
    parseQuery(ctx, noQuery);
    const { ok: _, ...dashboard } = ok(await organizations.dashboard(me(ctx), org(ctx)));
    json(ctx, 200, dashboard);
  });

  router.patch('/:organizationId', async (ctx) => {
    const { name } = parseBody(ctx, organizationUpdate);
    json(ctx, 200, ok(await organizations.rename(me(ctx), org(ctx), name, meta(ctx))).organization);
  });

  // Deleting needs no confirmation here: the console asks for the name, a client asks its user.
  router.delete('/:organizationId', async (ctx) => {
    const { release } = parseQuery(ctx, releaseQuery);
    // For good, and for the accounts it releases too: a recent sign-in, as in the console.
    requireRecentLogin(ctx);
    const removed = ok(await organizations.remove(me(ctx), org(ctx), meta(ctx), { release: release === 'true' }), released);
    ctx.state.log?.info({ organizationId: org(ctx), accountId: me(ctx), released: removed.released }, 'organization deleted');
    json(ctx, 200, { deleted: true, released: removed.released });
  });

  // ---- Domains ---------------------------------------------------------------------------------

  router.get('/:organizationId/domains', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { domains: ok(await organizations.listDomains(me(ctx), org(ctx))).domains });
  });

  router.post('/:organizationId/domains', async (ctx) => {
    const { domain } = parseBody(ctx, domainInput);
    const added = ok(await organizations.addDomain(me(ctx), org(ctx), domain, meta(ctx)));
    // Adding a domain the organization has answers that one (same token): 200, not 201.
    if (!added.existing) ctx.set('Location', `${ORGANIZATIONS_API}/${idPart(org(ctx))}/domains/${added.domain.id}`);
    json(ctx, added.existing ? 200 : 201, { domain: added.domain, existing: added.existing });
  });

  router.get('/:organizationId/domains/:domainId', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { domain: ok(await organizations.domainState(me(ctx), org(ctx), ctx.params.domainId!)).domain });
  });

  router.post('/:organizationId/domains/:domainId/verify', async (ctx) => {
    // A failed check answers 409 with each method's finding and the domain's state (last error).
    const verified = ok(await organizations.verifyDomain(me(ctx), org(ctx), ctx.params.domainId!, meta(ctx)), (failed) =>
      'checks' in failed ? { checks: failed.checks, domain: failed.domain } : {});
    json(ctx, 200, { domain: verified.domain, method: verified.method });
  });

  router.delete('/:organizationId/domains/:domainId', async (ctx) => {
    const { release } = parseQuery(ctx, releaseQuery);
    // Releasing managed accounts cannot be undone: a recent sign-in, as in the console.
    if (release === 'true') requireRecentLogin(ctx);
    const removed = ok(await organizations.removeDomain(me(ctx), org(ctx), ctx.params.domainId!, meta(ctx), { release: release === 'true' }), released);
    json(ctx, 200, { domain: removed.domain, released: removed.released });
  });

  // Claiming: GET is the preview (nothing changes), POST claims.
  router.get('/:organizationId/domains/:domainId/claim', async (ctx) => {
    const page = parseQuery(ctx, pageQuery);
    const preview = ok(await managed.previewClaim(me(ctx), org(ctx), ctx.params.domainId!, { after: page.cursor, limit: page.limit }));
    json(ctx, 200, { domain: preview.domain, count: preview.count, accounts: preview.accounts, next: preview.next ?? null });
  });

  router.post('/:organizationId/domains/:domainId/claim', async (ctx) => {
    json(ctx, 200, { claimed: ok(await managed.claim(me(ctx), org(ctx), ctx.params.domainId!, meta(ctx))).claimed });
  });

  // ---- Managed accounts ------------------------------------------------------------------------

  router.get('/:organizationId/accounts', async (ctx) => {
    const query = parseQuery(ctx, accountsQuery);
    const page = ok(await managed.list(me(ctx), org(ctx), { query: query.q, status: query.status, after: query.cursor, limit: query.limit }));
    json(ctx, 200, { accounts: page.accounts, next: page.next ?? null });
  });

  router.get('/:organizationId/accounts.csv', async (ctx) => {
    const query = parseQuery(ctx, accountsExportQuery);
    const exported = ok(await managed.exportCsv(me(ctx), org(ctx), { query: query.q, status: query.status }));
    csv(ctx, `accounts-${idPart(org(ctx))}.csv`, exported.csv);
  });

  router.get('/:organizationId/accounts/:accountId', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { account: ok(await managed.get(me(ctx), org(ctx), ctx.params.accountId!)).account });
  });

  router.patch('/:organizationId/accounts/:accountId', async (ctx) => {
    const input = parseBody(ctx, accountUpdate);
    json(ctx, 200, { account: ok(await managed.update(me(ctx), org(ctx), ctx.params.accountId!, input, meta(ctx))).account });
  });

  router.post('/:organizationId/accounts/:accountId/deactivate', async (ctx) => {
    json(ctx, 200, { account: ok(await managed.deactivate(me(ctx), org(ctx), ctx.params.accountId!, meta(ctx))).account });
  });

  router.post('/:organizationId/accounts/:accountId/reactivate', async (ctx) => {
    json(ctx, 200, { account: ok(await managed.reactivate(me(ctx), org(ctx), ctx.params.accountId!, meta(ctx))).account });
  });

  // DELETE schedules the erasure (RFC 9110 §15.3.3: accepted, not yet done); the account is
  // deactivated at once and erased at deleteAfter unless the deletion is cancelled.
  router.delete('/:organizationId/accounts/:accountId', async (ctx) => {
    const deleted = ok(await managed.delete(me(ctx), org(ctx), ctx.params.accountId!, meta(ctx)));
    json(ctx, 202, { account: deleted.account, deleteAfter: deleted.deleteAfter });
  });

  router.post('/:organizationId/accounts/:accountId/cancel-deletion', async (ctx) => {
    json(ctx, 200, { account: ok(await managed.cancelDeletion(me(ctx), org(ctx), ctx.params.accountId!, meta(ctx))).account });
  });

  // ---- Admins and invitations ------------------------------------------------------------------

  router.get('/:organizationId/admins', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { admins: ok(await organizations.admins(me(ctx), org(ctx))).admins });
  });

  // Removing oneself is leaving (admin.left in the audit log); never the last admin (409 admin.last).
  router.delete('/:organizationId/admins/:accountId', async (ctx) => {
    const removed = ok(await organizations.removeAdmin(me(ctx), org(ctx), ctx.params.accountId!, meta(ctx)));
    json(ctx, 200, { removed: { accountId: ctx.params.accountId, email: removed.email } });
  });

  router.get('/:organizationId/invitations', async (ctx) => {
    parseQuery(ctx, noQuery);
    json(ctx, 200, { invitations: ok(await invitations.listOpen(me(ctx), org(ctx))).invitations });
  });

  // The same answer whether the address has an account or not (no account enumeration).
  router.post('/:organizationId/invitations', async (ctx) => {
    const { email } = parseBody(ctx, invitationInput);
    const invited = ok(await invitations.invite(me(ctx), org(ctx), email, meta(ctx)));
    json(ctx, 201, { invitation: invited.invitation });
  });

  router.delete('/:organizationId/invitations/:invitationId', async (ctx) => {
    const revoked = ok(await invitations.revoke(me(ctx), org(ctx), ctx.params.invitationId!, meta(ctx)));
    json(ctx, 200, { revoked: { id: ctx.params.invitationId, email: revoked.email } });
  });

  // ---- Audit log -------------------------------------------------------------------------------

  router.get('/:organizationId/audit', async (ctx) => {
    const page = parseQuery(ctx, auditQuery);
    const result = ok(await organizations.auditPage(me(ctx), org(ctx), { cursor: page.cursor, limit: page.limit ?? 50 }));
    json(ctx, 200, { events: result.events, next: result.next ?? null });
  });

  // Every record, streamed in batches (the same columns and formula defusing as the console's).
  router.get('/:organizationId/audit.csv', async (ctx) => {
    parseQuery(ctx, noQuery);
    const exported = ok(await organizations.auditExport(me(ctx), org(ctx)));
    async function* lines() {
      yield AUDIT_CSV_HEADER;
      for await (const event of exported.events) yield auditCsvRecord(event);
    }
    csv(ctx, `audit-${idPart(org(ctx))}.csv`, Readable.from(lines()));
  });

  return router;
}
