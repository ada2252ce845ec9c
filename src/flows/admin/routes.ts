import { domainToUnicode } from 'node:url';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import type { OrganizationService, DomainView } from '../../organizations/organizations.ts';
import type { InvitationService } from '../../organizations/invitations.ts';
import type { ManagedAccounts } from '../../organizations/managed-accounts.ts';
import type { AuditEventView, OrganizationAction } from '../../organizations/admin-audit.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { csvRecord } from '../../shared/csv.ts';
import { flashMessages } from '../../http/flash.ts';
import { requestMeta } from '../../http/request-meta.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { parseForm } from '../../http/validate.ts';
import type { Views } from '../../http/views.ts';
import { settingsKit } from '../settings/gate.ts';
import { adminMessage, adminWaitMessage } from './messages.ts';
import type { Message } from '../../http/messages.ts';
import { managedAccountPages, type ConsoleKit } from './managed-accounts.ts';
import { policyPages } from './policies.ts';
import type { AuthenticationPolicies } from '../../organizations/authentication-policies.ts';
import { addDomainInput, createOrganizationInput, deleteOrganizationInput, inviteInput, releaseInput } from './schema.ts';
import { displayTime } from '../../shared/display-time.ts';

/**
 * The admin console (docs/flows/organizations.md, "Admin console"): server-rendered pages, every
 * action a plain form (no JavaScript needed), each form with its CSRF token, each success
 * answered 303 to its page (Post/Redirect/Get). Who may do what is decided by the organization
 * services, not here: anything they refuse as not found or forbidden is answered with the same
 * 404 as an address that does not exist, so a non-admin learns nothing about an organization.
 */
const INVITATION_COOKIE = 'lanyard.invitation';
const INVITATION_CONTEXT = 'organization_invitation';

const when = (date: Date | null | undefined) => (date ? displayTime(date) : '');

/** Every action the audit trail records has its words here: a missing one fails the type check. */
const ACTION_LABELS: Record<OrganizationAction, string> = {
  'organization.created': 'created the organization',
  'organization.renamed': 'renamed the organization to',
  'organization.deleted': 'deleted the organization',
  'domain.added': 'added the domain',
  'domain.verified': 'verified the domain',
  'domain.verification_failed': 'tried to verify the domain',
  'domain.removed': 'removed the domain',
  'invitation.sent': 'invited',
  'invitation.revoked': 'revoked the invitation of',
  'invitation.accepted': 'accepted the invitation of',
  'admin.removed': 'removed the admin',
  'admin.left': 'left the organization',
  'accounts.claimed': 'claimed the accounts of the domain',
  'accounts.released': 'released the managed accounts of',
  'account.updated': 'edited the account',
  'account.deactivated': 'deactivated the account',
  'account.reactivated': 'reactivated the account',
  'account.deletion_scheduled': 'scheduled the deletion of the account',
  'account.deletion_cancelled': 'cancelled the deletion of the account',
  'connector.created': 'registered the identity provider',
  'connector.updated': 'changed the identity provider',
  'connector.domains_changed': 'changed the domains of the identity provider',
  'policy.created': 'created the authentication policy',
  'policy.updated': 'changed the authentication policy',
  'policy.deleted': 'deleted the authentication policy',
  'policy.default_set': 'made the default policy',
  'policy.signed_out': 'signed out everyone under the policy',
  'account.policy_assigned': 'changed the authentication policy of',
};

/** The audit detail's keys in words; others are spelled out from their camelCase. */
const DETAIL_LABELS: Record<string, string> = {
  expiresAt: 'expires', deleteAfter: 'deleted after', claimed: 'accounts claimed', problem: 'why', method: 'method',
  state: 'it was', clientId: 'through the app', isDefault: 'default', connectorId: 'identity provider',
  maxSessionSeconds: 'longest session', idleTimeoutSeconds: 'idle sign-out after',
};

const seconds = (n: number) => (n % 86_400 === 0 ? `${n / 86_400} d` : n % 3600 === 0 ? `${n / 3600} h` : n % 60 === 0 ? `${n / 60} min` : `${n} s`);

/**
 * An audit record's detail as an admin reads it: labelled words, times in UTC, problem codes as
 * their messages, and nothing for a setting left empty — never the stored keys and codes (the
 * CSV export keeps those, for machines).
 */
function detailText(detail: Record<string, unknown>): string {
  return Object.entries(detail).flatMap(([key, value]) => {
    if (value === null || value === undefined || value === '') return [];
    const label = DETAIL_LABELS[key] ?? key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase();
    let text: string;
    if (typeof value === 'boolean') text = value ? 'yes' : 'no';
    else if (key === 'problem' && typeof value === 'string') text = adminMessage(value).title.toLowerCase();
    else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) text = when(new Date(value));
    else if (typeof value === 'number' && /Seconds$/.test(key)) text = seconds(value);
    else if (typeof value === 'object') text = Array.isArray(value) ? value.map(String).join(', ') : JSON.stringify(value);
    else text = String(value);
    return [`${label}: ${text}`];
  }).join(', ');
}

function eventView(e: AuditEventView) {
  // "accepted the invitation of" their own address: the sentence ends with the action.
  const self = e.action === 'admin.left' || (e.action === 'invitation.accepted' && e.targetLabel === e.actorEmail);
  // A rename reads "renamed the organization from <old> to <new>": the old name is part of the sentence.
  const { from, ...detail } = e.detail ?? {};
  const renamedFrom = e.action === 'organization.renamed' && typeof from === 'string' ? from : undefined;
  const rest = renamedFrom === undefined ? e.detail : detail;
  return {
    id: e.id,
    when: when(e.at),
    actor: e.actorEmail ?? (e.actorId ? e.actorId : 'Lanyard'),
    what: self && e.action === 'invitation.accepted' ? 'accepted the invitation'
      : renamedFrom !== undefined ? `renamed the organization from ${renamedFrom} to`
      : ACTION_LABELS[e.action as OrganizationAction] ?? e.action,
    action: e.action,
    target: self ? '' : e.targetLabel ?? e.targetId ?? '',
    detail: rest ? detailText(rest) : '',
  };
}

function domainPageView(d: DomainView) {
  // An internationalised domain is stored and verified in its ASCII form (xn--…); the heading
  // also shows it as people write it.
  const unicode = d.domain.includes('xn--') ? domainToUnicode(d.domain) : '';
  return {
    ...d,
    unicode: unicode && unicode !== d.domain ? unicode : '',
    since: when(d.state === 'failing' ? d.failingSince : d.state === 'verified' ? d.verifiedAt : d.addedAt),
    lastChecked: when(d.lastCheckedAt),
  };
}

export function adminRoutes(deps: {
  views: Views;
  sessions: BrowserSessions;
  accounts: AccountService;
  organizations: OrganizationService;
  invitations: InvitationService;
  managed: ManagedAccounts;
  /** Authentication policies (their own pages, src/flows/admin/policies.ts). */
  policies: AuthenticationPolicies;
  box: SecretBox;
  now: () => number;
  /** Page modules mounted on the console's router with its kit. */
  pages?: ((router: Router, kit: ConsoleKit) => void)[];
}) {
  const { organizations, invitations } = deps;
  const { page, signedIn, account } = settingsKit(deps);
  const router = new Router({ prefix: '/admin' });
  const flash = flashMessages({ name: 'lanyard.admin_flash', path: '/admin' });
  const invitationCookie = sealedCookie<{ token: string }>(deps.box, deps.now, { name: INVITATION_COOKIE, ttlSeconds: 3600 });

  const me = (ctx: Context) => account(ctx).id;
  const meta = (ctx: Context) => {
    const m = requestMeta(ctx);
    return { ip: m.ip, requestId: m.requestId };
  };
  const done = (ctx: Context, to: string, outcome: Record<string, string>) => {
    flash.set(ctx, outcome);
    ctx.status = 303;
    ctx.redirect(to);
  };
  /** Not an admin of it, no such organization, no such domain: one answer, the site's 404. */
  const notFound = (): never => {
    throw new AppError('request.not_found', 404);
  };
  const HIDDEN = new Set(['organization.not_found', 'organization.forbidden', 'domain.not_found', 'account.inactive']);
  const orgPath = (id: string) => `/admin/organizations/${encodeURIComponent(id)}`;

  /** The organization's name and the console's tabs, for every page of one organization. */
  async function shell(ctx: Context, organizationId: string, current: string) {
    const got = await organizations.get(me(ctx), organizationId);
    if (!got.ok || got.organization.role !== 'admin') return notFound();
    return { organization: got.organization, base: orgPath(got.organization.id), current, email: account(ctx).email, wide: true };
  }

  // ---- My organizations ----------------------------------------------------------------------

  /** A refusal's words: a code, or a wait message already made (adminWaitMessage). */
  const messageOf = (error: string | Message) => (typeof error === 'string' ? adminMessage(error) : error);

  const homeNotices = (outcome: Record<string, string>) => ({ left: outcome.left, deleted: outcome.deleted, released: outcome.released });

  const homePage = async (ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: string | Message) => {
    const mine = await organizations.listFor(me(ctx));
    page(ctx, status, 'admin/home', {
      title: 'Organizations',
      email: account(ctx).email,
      organizations: mine.map((o) => ({ ...o, path: orgPath(o.id) })),
      name: '',
      ...homeNotices(flash.take(ctx)),
      ...extra,
    }, error ? messageOf(error) : undefined);
  };

  router.get('/', signedIn, (ctx) => homePage(ctx, 200));

  router.post('/organizations', signedIn, async (ctx) => {
    const input = parseForm(ctx, createOrganizationInput);
    const result = await organizations.create(me(ctx), input.name, meta(ctx));
    if (!result.ok) {
      if ('retryAfterSeconds' in result) return homePage(ctx, 429, { name: input.name }, adminWaitMessage(ctx, result.problem, result.retryAfterSeconds));
      return homePage(ctx, result.problem === 'organization.limit' ? 409 : 400, { name: input.name }, result.problem);
    }
    done(ctx, orgPath(result.organization.id), { created: '1' });
  });

  // ---- Dashboard -----------------------------------------------------------------------------

  router.get('/organizations/:organizationId', signedIn, async (ctx) => {
    const base = await shell(ctx, ctx.params.organizationId!, 'dashboard');
    const board = await organizations.dashboard(me(ctx), base.organization.id);
    if (!board.ok) return notFound();
    const outcome = flash.take(ctx);
    page(ctx, 200, 'admin/dashboard', {
      title: board.organization.name,
      ...base,
      created: outcome.created === '1',
      joined: outcome.joined === '1',
      domains: board.domains.map(domainPageView),
      managedAccounts: board.managedAccounts,
      pendingInvitations: board.pendingInvitations,
      recent: board.recent.map(eventView),
    });
  });

  // ---- Domains -------------------------------------------------------------------------------

  async function domainsPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: string | Message) {
    const base = await shell(ctx, ctx.params.organizationId!, 'domains');
    const listed = await organizations.listDomains(me(ctx), base.organization.id);
    if (!listed.ok) return notFound();
    const outcome = flash.take(ctx);
    page(ctx, status, 'admin/domains', {
      title: `Domains · ${base.organization.name}`,
      ...base,
      domains: listed.domains.map(domainPageView),
      focus: outcome.added ?? outcome.verified,
      verified: outcome.verified,
      removed: outcome.removed,
      released: outcome.released,
      input: '',
      ...extra,
    }, error ? messageOf(error) : undefined);
  }

  router.get('/organizations/:organizationId/domains', signedIn, (ctx) => domainsPage(ctx, 200));

  router.post('/organizations/:organizationId/domains', signedIn, async (ctx) => {
    const input = parseForm(ctx, addDomainInput);
    const result = await organizations.addDomain(me(ctx), ctx.params.organizationId!, input.domain, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return domainsPage(ctx, 400, { input: input.domain, addFailed: true }, result.problem);
    }
    done(ctx, `${orgPath(ctx.params.organizationId!)}/domains#${result.domain.id}`, { added: result.domain.id });
  });

  router.post('/organizations/:organizationId/domains/:domainId/verify', signedIn, async (ctx) => {
    const result = await organizations.verifyDomain(me(ctx), ctx.params.organizationId!, ctx.params.domainId!, meta(ctx));
    if (result.ok) return done(ctx, `${orgPath(ctx.params.organizationId!)}/domains#${result.domain.id}`, { verified: result.domain.id });
    if (HIDDEN.has(result.problem)) return notFound();
    if ('retryAfterSeconds' in result) return domainsPage(ctx, 429, { focus: ctx.params.domainId }, adminWaitMessage(ctx, result.problem, result.retryAfterSeconds));
    // The attempt's outcome is this page, per method: shown now, not carried across a redirect.
    const checks = 'checks' in result ? result.checks.map((c) => ({ method: c.method === 'dns' ? 'DNS TXT record' : 'HTTPS file', ok: c.ok, detail: c.ok ? 'found the token' : c.detail })) : [];
    return domainsPage(ctx, 'checks' in result ? 200 : 409, { focus: ctx.params.domainId, checks, checkedDomain: ctx.params.domainId }, result.problem);
  });

  async function removeDomainPage(ctx: Context, status: number, error?: string) {
    const base = await shell(ctx, ctx.params.organizationId!, 'domains');
    const [found, preview] = await Promise.all([
      organizations.domainState(me(ctx), base.organization.id, ctx.params.domainId!),
      organizations.releasePreview(me(ctx), base.organization.id, ctx.params.domainId!),
    ]);
    if (!found.ok || !preview.ok) return notFound();
    page(ctx, status, 'admin/remove-domain', { title: `Remove ${found.domain.domain}`, ...base, domain: found.domain, managed: preview.managed, deactivated: preview.deactivated }, error ? messageOf(error) : undefined);
  }

  router.get('/organizations/:organizationId/domains/:domainId/remove', signedIn, (ctx) => removeDomainPage(ctx, 200));

  router.post('/organizations/:organizationId/domains/:domainId/remove', signedIn, async (ctx) => {
    const input = parseForm(ctx, releaseInput);
    const result = await organizations.removeDomain(me(ctx), ctx.params.organizationId!, ctx.params.domainId!, requestMeta(ctx), { release: input.release === 'yes' });
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return removeDomainPage(ctx, 409, result.problem);
    }
    done(ctx, `${orgPath(ctx.params.organizationId!)}/domains`, { removed: result.domain.domain, ...(result.released ? { released: String(result.released) } : {}) });
  });

  // ---- Admins and invitations ----------------------------------------------------------------

  async function adminsPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: string | Message) {
    const base = await shell(ctx, ctx.params.organizationId!, 'admins');
    const [admins, open] = await Promise.all([organizations.admins(me(ctx), base.organization.id), invitations.listOpen(me(ctx), base.organization.id)]);
    if (!admins.ok || !open.ok) return notFound();
    const outcome = flash.take(ctx);
    page(ctx, status, 'admin/admins', {
      title: `Admins · ${base.organization.name}`,
      ...base,
      admins: admins.admins.map((a) => ({ ...a, since: when(a.addedAt) })),
      invitations: open.invitations.map((i) => ({ ...i, sent: when(i.createdAt), expires: when(i.expiresAt) })),
      invited: outcome.invited,
      revoked: outcome.revoked,
      removed: outcome.removed,
      input: '',
      ...extra,
    }, error ? messageOf(error) : undefined);
  }

  router.get('/organizations/:organizationId/admins', signedIn, (ctx) => adminsPage(ctx, 200));

  router.post('/organizations/:organizationId/invitations', signedIn, async (ctx) => {
    const input = parseForm(ctx, inviteInput);
    const result = await invitations.invite(me(ctx), ctx.params.organizationId!, input.email, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      if ('retryAfterSeconds' in result) return adminsPage(ctx, 429, { input: input.email }, adminWaitMessage(ctx, result.problem, result.retryAfterSeconds));
      return adminsPage(ctx, 400, { input: input.email }, result.problem);
    }
    ctx.state.log?.info({ organizationId: ctx.params.organizationId, invitationId: result.invitation.id }, 'organization admin invited');
    done(ctx, `${orgPath(ctx.params.organizationId!)}/admins`, { invited: result.invitation.email });
  });

  router.post('/organizations/:organizationId/invitations/:invitationId/revoke', signedIn, async (ctx) => {
    const result = await invitations.revoke(me(ctx), ctx.params.organizationId!, ctx.params.invitationId!, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      // No such open invitation *in this organization* (another organization's id, or one
      // accepted, revoked or replaced meanwhile): 404 like the API, with the page and its words.
      return adminsPage(ctx, 404, {}, result.problem);
    }
    done(ctx, `${orgPath(ctx.params.organizationId!)}/admins`, { revoked: result.email });
  });

  /** The confirmation before removing an admin, or leaving (the admin is oneself). */
  async function removeAdminPage(ctx: Context, status: number, targetId: string, error?: string) {
    const base = await shell(ctx, ctx.params.organizationId!, 'admins');
    const admins = await organizations.admins(me(ctx), base.organization.id);
    if (!admins.ok) return notFound();
    const target = admins.admins.find((a) => a.accountId === targetId);
    if (!target) return notFound();
    page(ctx, status, 'admin/remove-admin', {
      title: target.you ? `Leave ${base.organization.name}` : `Remove ${target.email}`,
      ...base,
      target,
      last: admins.admins.length <= 1,
      action: target.you ? `${base.base}/leave` : `${base.base}/admins/${encodeURIComponent(target.accountId)}/remove`,
    }, error ? messageOf(error) : undefined);
  }

  router.get('/organizations/:organizationId/admins/:accountId/remove', signedIn, (ctx) => removeAdminPage(ctx, 200, ctx.params.accountId!));
  router.get('/organizations/:organizationId/leave', signedIn, (ctx) => removeAdminPage(ctx, 200, me(ctx)));

  const removeAdmin = (leaving: boolean) => async (ctx: Context) => {
    const targetId = leaving ? me(ctx) : (ctx.params.accountId as string);
    const result = await organizations.removeAdmin(me(ctx), ctx.params.organizationId as string, targetId, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem) || result.problem === 'admin.not_found') return notFound();
      return removeAdminPage(ctx, 409, targetId, result.problem);
    }
    if (leaving) return done(ctx, '/admin', { left: result.organizationName });
    done(ctx, `${orgPath(ctx.params.organizationId as string)}/admins`, { removed: result.email });
  };
  router.post('/organizations/:organizationId/admins/:accountId/remove', signedIn, removeAdmin(false));
  router.post('/organizations/:organizationId/leave', signedIn, removeAdmin(true));

  // ---- Settings: name, deletion ---------------------------------------------------------------

  async function settingsPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: { problem: 'rename' | 'delete'; code: string }) {
    const base = await shell(ctx, ctx.params.organizationId!, 'settings');
    const preview = await organizations.releasePreview(me(ctx), base.organization.id);
    if (!preview.ok) return notFound();
    page(ctx, status, 'admin/settings', {
      title: `Settings · ${base.organization.name}`,
      ...base,
      managedAccounts: preview.managed,
      deactivatedAccounts: preview.deactivated,
      renamed: flash.take(ctx).renamed === '1',
      name: base.organization.name,
      problem: error?.problem,
      ...extra,
    }, error ? messageOf(error.code) : undefined);
  }

  router.get('/organizations/:organizationId/settings', signedIn, (ctx) => settingsPage(ctx, 200));

  router.post('/organizations/:organizationId/name', signedIn, async (ctx) => {
    const input = parseForm(ctx, createOrganizationInput);
    const result = await organizations.rename(me(ctx), ctx.params.organizationId!, input.name, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return settingsPage(ctx, 400, { name: input.name }, { problem: 'rename', code: result.problem });
    }
    done(ctx, `${orgPath(result.organization.id)}/settings`, result.changed ? { renamed: '1' } : {});
  });

  router.post('/organizations/:organizationId/delete', signedIn, async (ctx) => {
    const input = parseForm(ctx, deleteOrganizationInput);
    const base = await shell(ctx, ctx.params.organizationId!, 'settings');
    // The name typed again: a deliberate act, not a stray click (compared as the name is stored).
    if (input.confirm.normalize('NFC').trim() !== base.organization.name) return settingsPage(ctx, 400, {}, { problem: 'delete', code: 'organization.confirm_name' });
    // The whole request's meta: the admins' security activity shows the device too.
    const result = await organizations.remove(me(ctx), base.organization.id, requestMeta(ctx), { release: input.release === 'yes' });
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return settingsPage(ctx, 409, {}, { problem: 'delete', code: result.problem });
    }
    ctx.state.log?.info({ organizationId: base.organization.id, accountId: me(ctx), released: result.released }, 'organization deleted');
    done(ctx, '/admin', { deleted: result.name, ...(result.released ? { released: String(result.released) } : {}) });
  });

  // ---- Audit log -----------------------------------------------------------------------------

  router.get('/organizations/:organizationId/audit', signedIn, async (ctx) => {
    const base = await shell(ctx, ctx.params.organizationId!, 'audit');
    const cursor = typeof ctx.query.before === 'string' ? ctx.query.before : undefined;
    const result = await organizations.auditPage(me(ctx), base.organization.id, { cursor, limit: 25 });
    if (!result.ok) return notFound();
    page(ctx, 200, 'admin/audit', { title: `Audit log · ${base.organization.name}`, ...base, events: result.events.map(eventView), next: result.next, paged: Boolean(cursor) });
  });

  // CSV for spreadsheets, every record (src/shared/csv.ts defuses formulas). Streamed in batches.
  router.get('/organizations/:organizationId/audit.csv', signedIn, async (ctx) => {
    const exported = await organizations.auditExport(me(ctx), ctx.params.organizationId!);
    if (!exported.ok) return notFound();
    const organizationId = ctx.params.organizationId!;
    async function* lines() {
      yield csvRecord(['time', 'actor', 'actor_id', 'action', 'target_type', 'target_id', 'target', 'detail', 'ip', 'request_id']);
      for await (const e of exported.ok ? exported.events : []) {
        yield csvRecord([e.at.toISOString(), e.actorEmail, e.actorId, e.action, e.targetType, e.targetId, e.targetLabel, e.detail ? JSON.stringify(e.detail) : '', e.ip, e.requestId]);
      }
    }
    ctx.status = 200;
    ctx.type = 'text/csv; charset=utf-8; header=present';
    ctx.set('Content-Disposition', `attachment; filename="audit-${organizationId.replace(/[^A-Za-z0-9_-]/g, '')}.csv"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = Readable.from(lines());
  });

  // ---- Claiming and managed accounts (their own module) ---------------------------------------

  const kit: ConsoleKit = { page, signedIn, me, meta, done, notFound, takeFlash: (ctx) => flash.take(ctx), shell, when, now: deps.now };
  managedAccountPages(router, kit, { managed: deps.managed, organizations });
  policyPages(router, kit, { policies: deps.policies, managed: deps.managed });
  // More of the console's pages, each in a module of its own (identity providers: connectors.ts).
  for (const addPages of deps.pages ?? []) addPages(router, kit);

  // ---- Accepting an invitation ---------------------------------------------------------------

  // The mailed link: the token moves into a sealed cookie and out of the address bar (and of
  // the history and any Referer), then the page below shows what accepting means.
  router.get('/invitation', async (ctx) => {
    if (typeof ctx.query.token === 'string') {
      const preview = await invitations.preview(ctx.query.token);
      if (!preview.ok) return page(ctx, preview.problem === 'invitation.invalid' ? 404 : 410, 'errors/error', { ...adminMessage(preview.problem) });
      invitationCookie.set(ctx, '/admin', INVITATION_CONTEXT, { token: ctx.query.token });
      ctx.status = 303;
      return ctx.redirect('/admin/invitation');
    }
    const kept = invitationCookie.get(ctx, INVITATION_CONTEXT);
    if (!kept) return page(ctx, 404, 'errors/error', { ...adminMessage('invitation.none') });
    const preview = await invitations.preview(kept.token);
    if (!preview.ok) return page(ctx, preview.problem === 'invitation.invalid' ? 404 : 410, 'errors/error', { ...adminMessage(preview.problem) });
    const session = await deps.sessions.current(ctx);
    const signed = session ? await deps.accounts.findById(session.accountId) : undefined;
    const active = signed?.status === 'active' ? signed : undefined;
    const matches = active ? active.email.toLowerCase() === preview.invitation.email.toLowerCase() : false;
    page(ctx, 200, 'admin/invitation', {
      title: `Join ${preview.invitation.organizationName}`,
      invitation: { ...preview.invitation, expires: when(preview.invitation.expiresAt) },
      signedInAs: active?.email,
      matches,
    }, active && !matches ? adminMessage('invitation.wrong_account') : undefined);
  });

  router.post('/invitation/accept', signedIn, async (ctx) => {
    const kept = invitationCookie.get(ctx, INVITATION_CONTEXT);
    if (!kept) return page(ctx, 404, 'errors/error', { ...adminMessage('invitation.none') });
    const result = await invitations.accept(me(ctx), kept.token, meta(ctx));
    if (!result.ok) {
      if (result.problem === 'invitation.wrong_account') {
        const preview = await invitations.preview(kept.token);
        if (preview.ok) {
          return page(ctx, 403, 'admin/invitation', { title: `Join ${preview.invitation.organizationName}`, invitation: { ...preview.invitation, expires: when(preview.invitation.expiresAt) }, signedInAs: account(ctx).email, matches: false }, adminMessage(result.problem));
        }
      }
      invitationCookie.clear(ctx, '/admin');
      return page(ctx, result.problem === 'invitation.invalid' ? 404 : 410, 'errors/error', { ...adminMessage(result.problem) });
    }
    invitationCookie.clear(ctx, '/admin');
    ctx.state.log?.info({ organizationId: result.organizationId, accountId: me(ctx) }, 'organization invitation accepted');
    done(ctx, orgPath(result.organizationId), { joined: '1' });
  });

  return router;
}
