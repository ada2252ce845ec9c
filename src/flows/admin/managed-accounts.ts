import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { MANAGED_DELETION_GRACE_DAYS, type ManagedAccounts, type ManagedAccountView } from '../../organizations/managed-accounts.ts';
import type { OrganizationService, OrganizationView } from '../../organizations/organizations.ts';
import type { RequestMeta } from '../../identity/security-events.ts';
import type { PageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { adminMessage } from './messages.ts';
import { bulkInput, editAccountInput } from './schema.ts';

/**
 * The console's pages for claiming and managed accounts (docs/flows/organizations.md, "Admin
 * console"), on the managed-accounts service, which decides who may do what: claim preview and
 * claim, the list (search, filter, paging, CSV), an account's page (edit, deactivate, reactivate,
 * delete, cancel a deletion) and bulk actions. Every page works without JavaScript; the list's
 * search also updates as one types, through public/admin-accounts.js (progressive enhancement:
 * it fetches this same page and swaps the results). Each destructive action — one account or
 * many — first shows a page saying exactly what will happen; each form carries its CSRF token
 * and answers 303 (Post/Redirect/Get).
 */

/** The most accounts one bulk action takes (each is its own transaction and sign-out). */
export const MAX_BULK = 100;
/** Accounts per page of the list and of the claim preview. */
const PAGE_SIZE = 50;

type BulkAction = 'deactivate' | 'reactivate' | 'delete';
const BULK_ACTIONS: readonly BulkAction[] = ['deactivate', 'reactivate', 'delete'];

const STATUS_LABELS: Record<ManagedAccountView['status'], string> = {
  active: 'Active',
  deactivated: 'Deactivated',
  pending_deletion: 'Pending deletion',
  closed: 'Closed',
};

/** What each action may start from; anything else is left out of a bulk action, and said so. */
const ELIGIBLE: Record<BulkAction, ReadonlySet<ManagedAccountView['status']>> = {
  deactivate: new Set(['active']),
  reactivate: new Set(['deactivated', 'pending_deletion']),
  delete: new Set(['active', 'deactivated']),
};

const ACTION_WORDS: Record<BulkAction, { verb: string; done: string; already: string }> = {
  deactivate: { verb: 'Deactivate', done: 'Deactivated', already: 'not active' },
  reactivate: { verb: 'Reactivate', done: 'Reactivated', already: 'already active' },
  delete: { verb: 'Delete', done: 'Scheduled for deletion', already: 'already pending deletion' },
};

/** What the console's pages share, from routes.ts. */
export interface ConsoleKit {
  page: PageRenderer;
  signedIn: Middleware;
  me: (ctx: Context) => string;
  meta: (ctx: Context) => RequestMeta;
  done: (ctx: Context, to: string, outcome: Record<string, string>) => void;
  notFound: () => never;
  takeFlash: (ctx: Context) => Record<string, string>;
  shell: (ctx: Context, organizationId: string, current: string) => Promise<{ organization: OrganizationView; base: string; current: string; email: string; wide: boolean }>;
  when: (date: Date | null | undefined) => string;
  now: () => number;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const single = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export function managedAccountPages(router: Router, kit: ConsoleKit, deps: { managed: ManagedAccounts; organizations: OrganizationService }) {
  const { page, signedIn, me, meta, done, notFound, shell, when } = kit;
  const { managed, organizations } = deps;
  const graceDays = MANAGED_DELETION_GRACE_DAYS;

  const accountView = (a: ManagedAccountView, ctx: Context, base: string) => ({
    ...a,
    statusLabel: STATUS_LABELS[a.status],
    you: a.id === me(ctx),
    since: when(a.managedSince),
    created: when(a.createdAt),
    deletes: when(a.deleteAfter),
    path: `${base}/accounts/${encodeURIComponent(a.id)}`,
  });

  /** The date a deletion asked now would erase the account (the service computes the same). */
  const deletionDate = () => when(new Date(kit.now() + graceDays * 86_400_000));

  // ---- Claiming a verified domain's accounts -------------------------------------------------

  async function claimPage(ctx: Context, status: number, error?: string) {
    const base = await shell(ctx, ctx.params.organizationId!, 'domains');
    const found = await organizations.domainState(me(ctx), base.organization.id, ctx.params.domainId!);
    if (!found.ok) return notFound();
    const after = single(ctx.query.after);
    const preview = await managed.previewClaim(me(ctx), base.organization.id, found.domain.id, { after, limit: PAGE_SIZE });
    if (!preview.ok && (preview.problem === 'domain.not_found' || preview.problem.startsWith('organization.'))) return notFound();
    const problem = error ?? (preview.ok ? undefined : preview.problem);
    page(ctx, problem && !error ? 409 : status, 'admin/claim', {
      title: `Claim accounts on ${found.domain.domain}`,
      ...base,
      domain: found.domain,
      frozen: !preview.ok && preview.problem === 'domain.claims_frozen',
      pending: !preview.ok && preview.problem === 'domain.not_verified',
      count: preview.ok ? preview.count : 0,
      accounts: preview.ok ? preview.accounts.map((a) => accountView(a, ctx, base.base)) : [],
      next: preview.ok && preview.next ? `${base.base}/domains/${encodeURIComponent(found.domain.id)}/claim?after=${encodeURIComponent(preview.next)}` : undefined,
      paged: Boolean(after),
      claimLabel: preview.ok ? `Claim ${plural(preview.count, 'account')}` : '',
    }, problem ? adminMessage(problem) : undefined);
  }

  router.get('/organizations/:organizationId/domains/:domainId/claim', signedIn, (ctx) => claimPage(ctx, 200));

  router.post('/organizations/:organizationId/domains/:domainId/claim', signedIn, async (ctx) => {
    const result = await managed.claim(me(ctx), ctx.params.organizationId!, ctx.params.domainId!, meta(ctx));
    if (!result.ok) {
      if (result.problem === 'domain.not_found' || result.problem.startsWith('organization.') || result.problem === 'account.inactive') return notFound();
      return claimPage(ctx, 409, result.problem);
    }
    ctx.state.log?.info({ organizationId: ctx.params.organizationId, domainId: ctx.params.domainId, claimed: result.claimed }, 'managed accounts claimed');
    done(ctx, `/admin/organizations/${encodeURIComponent(ctx.params.organizationId!)}/accounts`, { claimed: String(result.claimed) });
  });

  // ---- The list: search, filter, paging, export ----------------------------------------------

  /** The list's query as typed; a repeated or non-text parameter is a malformed search. */
  function listQuery(ctx: Context): { q: string; status: string; after: string | undefined; valid: boolean } {
    const { q, status, after } = ctx.query;
    const valid = [q, status, after].every((v) => v === undefined || typeof v === 'string');
    return { q: single(q) ?? '', status: single(status) ?? '', after: single(after) || undefined, valid };
  }

  function listHref(base: string, params: { q: string; status: string; after?: string | undefined }, path = '/accounts') {
    const search = new URLSearchParams();
    if (params.q) search.set('q', params.q);
    if (params.status) search.set('status', params.status);
    if (params.after) search.set('after', params.after);
    const text = search.toString();
    return `${base}${path}${text ? `?${text}` : ''}`;
  }

  async function listPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: string) {
    const base = await shell(ctx, ctx.params.organizationId!, 'accounts');
    const query = listQuery(ctx);
    const listed = query.valid
      ? await managed.list(me(ctx), base.organization.id, { query: query.q, status: query.status, after: query.after, limit: PAGE_SIZE })
      : { ok: false as const, problem: 'list.invalid' as const };
    if (!listed.ok && listed.problem !== 'list.invalid') return notFound();
    const outcome = kit.takeFlash(ctx);
    const problem = error ?? (listed.ok ? undefined : listed.problem);
    const accounts = listed.ok ? listed.accounts.map((a) => accountView(a, ctx, base.base)) : [];
    page(ctx, listed.ok ? status : 400, 'admin/accounts', {
      title: `Managed accounts · ${base.organization.name}`,
      ...base,
      script: 'admin-accounts.js',
      q: query.q,
      status: query.status,
      statuses: [['', 'All'], ['active', 'Active'], ['deactivated', 'Deactivated'], ['pending_deletion', 'Pending deletion']],
      accounts,
      searching: Boolean(query.q || query.status),
      paged: Boolean(query.after),
      first: listHref(base.base, query),
      next: listed.ok && listed.next ? listHref(base.base, { ...query, after: listed.next }) : undefined,
      csv: listHref(base.base, query, '/accounts.csv'),
      claimed: outcome.claimed,
      bulkDone: outcome.bulk ? `${ACTION_WORDS[outcome.bulk as BulkAction]?.done ?? 'Done'}: ${plural(Number(outcome.count ?? 0), 'account')}.` : undefined,
      bulkSkipped: outcome.skipped && outcome.skipped !== '0' ? `${plural(Number(outcome.skipped), 'account was', 'accounts were')} left out: changed meanwhile, or not managed by this organization any more.` : undefined,
      maxBulk: MAX_BULK,
      ...extra,
    }, problem ? adminMessage(problem) : undefined);
  }

  router.get('/organizations/:organizationId/accounts', signedIn, (ctx) => listPage(ctx, 200));

  router.get('/organizations/:organizationId/accounts.csv', signedIn, async (ctx) => {
    const query = listQuery(ctx);
    if (!query.valid) {
      await shell(ctx, ctx.params.organizationId!, 'accounts');
      return listPage(ctx, 400);
    }
    const exported = await managed.exportCsv(me(ctx), ctx.params.organizationId!, { query: query.q, status: query.status });
    if (!exported.ok) {
      if (exported.problem === 'list.invalid') return listPage(ctx, 400);
      return notFound();
    }
    ctx.status = 200;
    ctx.type = 'text/csv; charset=utf-8; header=present';
    ctx.set('Content-Disposition', `attachment; filename="managed-accounts-${ctx.params.organizationId!.replace(/[^A-Za-z0-9_-]/g, '')}.csv"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = exported.csv;
  });

  // ---- Bulk actions --------------------------------------------------------------------------

  /** The selection split into what the action will do and what it leaves out, with why. */
  async function bulkSelection(ctx: Context, organizationId: string, base: string, action: BulkAction, ids: string[]) {
    const found = await managed.find(me(ctx), organizationId, ids);
    if (!found.ok) return found;
    const views = found.accounts.map((a) => accountView(a, ctx, base));
    const chosen = views.filter((a) => !a.you && ELIGIBLE[action].has(a.status));
    const leftOut = [
      ...views.filter((a) => a.you).map((a) => ({ email: a.email, why: 'your own account: another admin can do this' })),
      ...views.filter((a) => !a.you && !ELIGIBLE[action].has(a.status)).map((a) => ({ email: a.email, why: ACTION_WORDS[action].already })),
    ];
    const unknown = new Set(ids).size - views.length;
    return { ok: true as const, chosen, leftOut, unknown };
  }

  async function bulkPage(ctx: Context, status: number, action: BulkAction | undefined, ids: string[], error?: string) {
    const base = await shell(ctx, ctx.params.organizationId!, 'accounts');
    const back = `${base.base}/accounts`;
    if (!action || error) {
      return page(ctx, status, 'admin/bulk', { title: 'Bulk action', ...base, back, action: undefined, chosen: [], leftOut: [] }, adminMessage(error ?? 'bulk.action'));
    }
    const selection = await bulkSelection(ctx, base.organization.id, base.base, action, ids);
    if (!selection.ok) return notFound();
    const count = selection.chosen.length;
    page(ctx, status, 'admin/bulk', {
      title: `${ACTION_WORDS[action].verb} ${plural(count, 'account')}`,
      ...base,
      back,
      action,
      heading: `${ACTION_WORDS[action].verb} ${plural(count, 'account')}?`,
      button: `${ACTION_WORDS[action].verb} ${plural(count, 'account')}`,
      count,
      chosen: selection.chosen,
      ids: selection.chosen.map((a) => a.id).join(' '),
      leftOut: selection.leftOut,
      unknown: selection.unknown,
      deletes: deletionDate(),
      graceDays,
    }, count ? undefined : adminMessage('bulk.none_eligible'));
  }

  /** The bulk form's selection (GET, no change: the page that confirms it). */
  router.get('/organizations/:organizationId/accounts/bulk', signedIn, async (ctx) => {
    const action = single(ctx.query.action);
    const raw = ctx.query.id;
    const ids = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((id): id is string => typeof id === 'string');
    if (!BULK_ACTIONS.includes(action as BulkAction)) return bulkPage(ctx, 400, undefined, [], 'bulk.action');
    if (!ids.length) return bulkPage(ctx, 400, undefined, [], 'bulk.none');
    if (ids.length > MAX_BULK) return bulkPage(ctx, 400, undefined, [], 'bulk.too_many');
    return bulkPage(ctx, 200, action as BulkAction, ids);
  });

  router.post('/organizations/:organizationId/accounts/bulk', signedIn, async (ctx) => {
    const input = parseForm(ctx, bulkInput);
    const ids = input.ids.split(/\s+/).filter(Boolean);
    const action = input.action as BulkAction;
    if (ids.length > MAX_BULK) return bulkPage(ctx, 400, undefined, [], 'bulk.too_many');
    if (!ids.length) return bulkPage(ctx, 400, undefined, [], 'bulk.none');
    const organizationId = ctx.params.organizationId!;
    // Authorization first, once: an outsider gets the console's 404, not a count of refusals.
    const access = await managed.find(me(ctx), organizationId, []);
    if (!access.ok) return notFound();
    let count = 0;
    for (const id of new Set(ids)) {
      // One account at a time, each in its own transaction with its own audit record and sign-out;
      // one that changed meanwhile (or is the admin's own) is left out and counted as such.
      const result = action === 'deactivate' ? await managed.deactivate(me(ctx), organizationId, id, meta(ctx))
        : action === 'reactivate' ? await managed.reactivate(me(ctx), organizationId, id, meta(ctx))
          : await managed.delete(me(ctx), organizationId, id, meta(ctx));
      if (result.ok) count += 1;
    }
    ctx.state.log?.info({ organizationId, action, count, selected: ids.length }, 'managed accounts bulk action');
    done(ctx, `/admin/organizations/${encodeURIComponent(organizationId)}/accounts`, { bulk: action, count: String(count), skipped: String(new Set(ids).size - count) });
  });

  // ---- One account ---------------------------------------------------------------------------

  /** The account if this organization manages it, else the console's 404. */
  async function oneAccount(ctx: Context, current = 'accounts') {
    const base = await shell(ctx, ctx.params.organizationId!, current);
    const found = await managed.find(me(ctx), base.organization.id, [ctx.params.accountId]);
    if (!found.ok || !found.accounts[0]) return notFound();
    return { base, account: accountView(found.accounts[0], ctx, base.base) };
  }

  async function accountPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: string) {
    const { base, account } = await oneAccount(ctx);
    const domains = await organizations.listDomains(me(ctx), base.organization.id);
    const outcome = kit.takeFlash(ctx);
    page(ctx, status, 'admin/account', {
      title: `${account.email} · ${base.organization.name}`,
      ...base,
      account,
      verifiedDomains: domains.ok ? domains.domains.filter((d) => d.state === 'verified').map((d) => d.domain) : [],
      input: { name: account.name ?? '', email: account.email },
      outcome: outcome.account ? accountOutcome(outcome.account, account) : undefined,
      graceDays,
      ...extra,
    }, error ? adminMessage(error) : undefined);
  }

  function accountOutcome(what: string, account: { email: string; deletes: string }) {
    switch (what) {
      case 'saved': return 'Saved.';
      case 'deactivated': return `${account.email} is deactivated: signed out everywhere, and their logins are refused until reactivated.`;
      case 'reactivated': return `${account.email} is active again and can sign in.`;
      case 'deletion_scheduled': return `${account.email} is deactivated and will be erased on ${account.deletes}.`;
      case 'deletion_cancelled': return `The deletion of ${account.email} was cancelled. The account stays deactivated until you reactivate it.`;
      default: return undefined;
    }
  }

  router.get('/organizations/:organizationId/accounts/:accountId', signedIn, (ctx) => accountPage(ctx, 200));

  /** Refusals an account's page explains (anything else about access is the console's 404). */
  const ACCOUNT_HIDDEN = new Set(['organization.not_found', 'organization.forbidden', 'account.not_found', 'account.inactive']);
  const accountPath = (ctx: Context) => `/admin/organizations/${encodeURIComponent(ctx.params.organizationId!)}/accounts/${encodeURIComponent(ctx.params.accountId!)}`;

  router.post('/organizations/:organizationId/accounts/:accountId', signedIn, async (ctx) => {
    const input = parseForm(ctx, editAccountInput);
    const result = await managed.update(me(ctx), ctx.params.organizationId!, ctx.params.accountId!, { name: input.name, email: input.email }, meta(ctx));
    if (!result.ok) {
      if (ACCOUNT_HIDDEN.has(result.problem)) return notFound();
      return accountPage(ctx, result.problem === 'account.self' || result.problem === 'account.admin' ? 409 : 400, { input, focus: result.problem.startsWith('account.name') ? 'name' : 'email' }, result.problem);
    }
    done(ctx, accountPath(ctx), { account: 'saved' });
  });

  /** The confirmation of a destructive action on one account: exactly what will happen. */
  async function confirmPage(ctx: Context, status: number, action: 'deactivate' | 'delete', error?: string) {
    const { base, account } = await oneAccount(ctx);
    const allowed = !account.you && ELIGIBLE[action].has(account.status);
    page(ctx, status, 'admin/confirm-account', {
      title: `${ACTION_WORDS[action].verb} ${account.email}`,
      ...base,
      account,
      action,
      allowed,
      deletes: deletionDate(),
      graceDays,
    }, error ? adminMessage(error) : account.you ? adminMessage('account.self') : !allowed ? adminMessage('account.state') : undefined);
  }

  const OUTCOMES = { deactivate: 'deactivated', reactivate: 'reactivated', delete: 'deletion_scheduled', 'cancel-deletion': 'deletion_cancelled' } as const;

  for (const action of ['deactivate', 'delete'] as const) {
    router.get(`/organizations/:organizationId/accounts/:accountId/${action}`, signedIn, (ctx) => confirmPage(ctx, 200, action));
  }
  for (const action of ['deactivate', 'reactivate', 'delete', 'cancel-deletion'] as const) {
    router.post(`/organizations/:organizationId/accounts/:accountId/${action}`, signedIn, async (ctx) => {
      const act = action === 'cancel-deletion' ? managed.cancelDeletion : managed[action];
      const result = await act(me(ctx), ctx.params.organizationId!, ctx.params.accountId!, meta(ctx));
      if (!result.ok) {
        if (ACCOUNT_HIDDEN.has(result.problem)) return notFound();
        if (action === 'deactivate' || action === 'delete') return confirmPage(ctx, 409, action, result.problem);
        return accountPage(ctx, 409, {}, result.problem);
      }
      ctx.state.log?.info({ organizationId: ctx.params.organizationId, accountId: ctx.params.accountId, action }, 'managed account action');
      done(ctx, accountPath(ctx), { account: OUTCOMES[action] });
    });
  }
}
