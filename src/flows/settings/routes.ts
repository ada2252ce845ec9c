import Router from '@koa/router';
import { flashMessages } from '../../http/flash.ts';
import { describeScope } from '../../identity/claims-release.ts';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { PasswordResetService } from '../../identity/password-reset.ts';
import { passwordMinLength, type AccountSubject } from '../../policy/policy.ts';
import type { AccountClosureService } from '../../identity/account-closure.ts';
import type { EmailChangeService } from '../../identity/email-change.ts';
import type { ManagedAccounts } from '../../organizations/managed-accounts.ts';
import type { AccountSessions } from '../../oidc/account-sessions.ts';
import { ACCOUNT_CLIENT_ID, type BrowserSessions } from '../../oidc/browser-session.ts';
import { constantTimeEqual } from '../../shared/crypto.ts';
import { randomSecret } from '../../shared/ids.ts';
import { messageFor } from '../../http/messages.ts';
import type { Throttle } from '../../identity/throttle.ts';
import type { Reauthentication } from '../../identity/reauthentication.ts';
import { privilegedSession } from './privileged-session.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import { returnPath, settingsKit } from './gate.ts';
import type { Views } from '../../http/views.ts';
import { parseForm } from '../../http/validate.ts';
import { changeEmailInput, changePasswordInput, closeAccountInput, emailVerifyInput } from './schema.ts';
import { PROFILE_FIELDS, profileUpdate, visibilityOf, VISIBILITIES } from '../../identity/profile.ts';
import { displayTime } from '../../shared/display-time.ts';

const STATE_COOKIE = 'lanyard.account_state';

/** A product as the settings pages name it: its registered name, else its client id. */
const appName = (app: { client_id: string; name: string | null }) => app.name ?? app.client_id;

/** A readable device description from a User-Agent header, for the sessions list. */

export function describeDevice(userAgent: string | null): string {
  if (!userAgent) return 'Unknown device';
  const browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox' : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome' : /Safari\//.test(userAgent) ? 'Safari' : undefined;
  const system = /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS' : /Windows/.test(userAgent) ? 'Windows' : /Mac OS X|Macintosh/.test(userAgent) ? 'macOS' : /Linux/.test(userAgent) ? 'Linux' : undefined;
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? userAgent.slice(0, 60);
}

/**
 * Account settings (docs/flows/settings.md), signed in through the same browser session as every
 * product. Without a session, /account/login runs an authorization for the built-in
 * `lanyard-account` client with response_type=none: the login pages, then back here.
 */
export function settingsRoutes(deps: {
  issuer: string;
  views: Views;
  sessions: BrowserSessions;
  accounts: AccountService;
  passwords: PasswordResetService;
  accountSessions: AccountSessions;
  closure: AccountClosureService;
  emailChanges: EmailChangeService;
  /** Who manages an account and whom to ask (the pages say it; the services enforce it). */
  management: Pick<ManagedAccounts, 'managementOf'>;
  events: SecurityEvents;
  throttle: Throttle;
  reauthentication: Reauthentication;
  graceDays: number;
  minLength: number;
}) {
  const { views, sessions, accounts, accountSessions } = deps;
  const router = new Router({ prefix: '/account' });

  const { page, signedIn, account, nav, login } = settingsKit({ views, sessions, accounts });
  const { confirmView, sensitive, statusOf } = privilegedSession({ reauthentication: deps.reauthentication, throttle: deps.throttle, account, login });

  /**
   * Starts the settings' own authorization. With `reauth=1` ("Confirm it's you") it asks for a
   * new login whatever the session (`prompt=login`, OIDC Core §3.1.2.1), with the signed-in
   * address as `login_hint`: the person proves themselves by any method the login pages offer
   * them — the password, or Google for a password-less Google account — and the session's login
   * time, methods and level become the new login's.
   */
  router.get('/login', async (ctx) => {
    const next = typeof ctx.query.next === 'string' ? returnPath(ctx.query.next) : '/account';
    const state = `${randomSecret(16)}.${Buffer.from(next).toString('base64url')}`;
    ctx.cookies.set(STATE_COOKIE, state, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/account', maxAge: 600_000, signed: false });
    const query = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, response_type: 'none', scope: 'openid', redirect_uri: `${deps.issuer}/account/callback`, state });
    if (ctx.query.reauth === '1') {
      query.set('prompt', 'login');
      const session = await sessions.current(ctx);
      const email = session ? (await accounts.findById(session.accountId))?.email : undefined;
      if (email) query.set('login_hint', email);
    }
    ctx.status = 303;
    ctx.redirect(`/auth?${query}`);
  });

  router.get('/callback', (ctx) => {
    const expected = ctx.cookies.get(STATE_COOKIE);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    ctx.cookies.set(STATE_COOKIE, null, { path: '/account' });
    const ours = Boolean(expected) && constantTimeEqual(expected!, state);
    // "Cancel and return to Lanyard account settings" on the login page: the person chose not to
    // sign in (RFC 6749 §4.1.2.1 access_denied, to our own state) — back to the home page, no error.
    if (ours && ctx.query.error === 'access_denied') {
      ctx.status = 303;
      return ctx.redirect('/');
    }
    if (!ours || ctx.query.error) {
      return page(ctx, 400, 'errors/error', { ...messageFor('account.sign_in_failed') });
    }
    const next = Buffer.from(state.split('.')[1] ?? '', 'base64url').toString();
    ctx.status = 303;
    ctx.redirect(returnPath(next));
  });

  /** The account's managers for the page (an organization, a Trello Enterprise), with whom to ask. */
  const managedBy = async (ctx: Context) => ({ managers: await deps.management.managementOf(account(ctx).id) });

  router.get('/', signedIn, async (ctx) => page(ctx, 200, 'settings/overview', { title: 'Your account', ...nav(ctx, 'overview'), ...(await managedBy(ctx)) }));

  // Forms that succeed answer 303 to their page with the outcome (Post/Redirect/Get): a reload
  // shows the page again instead of sending the form twice.
  const flash = flashMessages({ name: 'lanyard.flash', path: '/account' });
  const done = (ctx: Context, to: string, outcome: Record<string, string>) => {
    flash.set(ctx, outcome);
    ctx.status = 303;
    ctx.redirect(to);
  };

  const passwordPage = async (ctx: Context) => ({
    title: account(ctx).password_hash ? 'Change password' : 'Set a password',
    ...nav(ctx, 'password'),
    // The operator's minimum, or the account's organization's policy's when longer (the service checks the same).
    minLength: Math.max(deps.minLength, passwordMinLength((ctx.state.standing as { subject: AccountSubject }).subject)),
    hasPassword: Boolean(account(ctx).password_hash),
    confirm: await confirmView(ctx, '/account/password'),
  });

  router.get('/password', signedIn, async (ctx) => page(ctx, 200, 'settings/password', { ...(await passwordPage(ctx)), changed: flash.take(ctx).done === 'password' }));

  // An account without a password (Google, bulk migration) sets one here too: it is never asked
  // for a current password it does not have, only for a recent login (by Google, for it).
  router.post('/password', signedIn, async (ctx) => {
    const input = parseForm(ctx, changePasswordInput);
    const result = await sensitive(ctx, input.current, (proof) => deps.passwords.change(account(ctx).id, proof, input.password, ctx.state.sessionUid as string, requestMeta(ctx)));
    if (!result.ok) return page(ctx, statusOf(result.problem), 'settings/password', await passwordPage(ctx), result.problem);
    done(ctx, '/account/password', { done: 'password' });
  });

  router.get('/sessions', signedIn, async (ctx) => {
    const [list, apps] = await Promise.all([accountSessions.list(account(ctx).id), accountSessions.connectedApps(account(ctx).id)]);
    // The products by the names Connected apps shows, not their client ids.
    const names = new Map(apps.map((a) => [a.client_id, appName(a)]));
    const outcome = flash.take(ctx).done;
    page(ctx, 200, 'settings/sessions', {
      title: 'Where you’re logged in',
      ...nav(ctx, 'sessions'),
      ended: outcome === 'session' ? 'That session was logged out.' : outcome === 'others' ? 'Every other session was logged out.' : undefined,
      sessions: list.map((s) => ({
        uid: s.session_uid,
        current: s.session_uid === ctx.state.sessionUid,
        device: describeDevice(s.user_agent),
        ip: s.ip ?? 'unknown',
        lastSeen: s.last_seen_at ? displayTime(s.last_seen_at) : s.login_ts ? displayTime(s.login_ts * 1000) : 'unknown',
        clients: s.clients.filter((c) => c !== ACCOUNT_CLIENT_ID).map((c) => names.get(c) ?? c),
      })),
    });
  });

  router.post('/sessions/:sessionUid/end', signedIn, async (ctx) => {
    await deps.accountSessions.endOne(account(ctx).id, ctx.params.sessionUid!);
    await deps.events.record({ type: 'session.revoked', accountId: account(ctx).id, detail: { session: ctx.params.sessionUid === ctx.state.sessionUid ? 'this' : 'other' } }, requestMeta(ctx));
    if (ctx.params.sessionUid === ctx.state.sessionUid) {
      // "Log out here": the page every logout ends on, saying so — not a login form, which read
      // as if the logout had failed.
      ctx.status = 303;
      return ctx.redirect('/session/end/success');
    }
    done(ctx, '/account/sessions', { done: 'session' });
  });

  router.post('/sessions/end-others', signedIn, async (ctx) => {
    await deps.accountSessions.endAll(account(ctx).id, { keepSessionUid: ctx.state.sessionUid as string });
    await deps.events.record({ type: 'session.revoked', accountId: account(ctx).id, detail: { session: 'all others' } }, requestMeta(ctx));
    done(ctx, '/account/sessions', { done: 'others' });
  });

  router.get('/apps', signedIn, async (ctx) => {
    const apps = (await accountSessions.connectedApps(account(ctx).id)).filter((a) => a.client_id !== ACCOUNT_CLIENT_ID);
    const removed = flash.take(ctx).removed;
    page(ctx, 200, 'settings/apps', { title: 'Connected apps', ...nav(ctx, 'apps'), removed, apps: apps.map((a) => ({ ...a, name: appName(a), scopes: a.scopes.split(' ').filter(Boolean).map(describeScope) })) });
  });

  router.post('/apps/:clientId/revoke', signedIn, async (ctx) => {
    // Its name for the notice, read while it still has access.
    const app = (await accountSessions.connectedApps(account(ctx).id)).find((a) => a.client_id === ctx.params.clientId);
    await accountSessions.revokeClient(account(ctx).id, ctx.params.clientId!);
    await deps.events.record({ type: 'grant.revoked', accountId: account(ctx).id, detail: { client: ctx.params.clientId } }, requestMeta(ctx, ctx.params.clientId));
    ctx.state.log?.info({ accountId: account(ctx).id, clientId: ctx.params.clientId }, 'grant revoked by the user');
    done(ctx, '/account/apps', { removed: app ? appName(app) : 'The app' });
  });

  const profilePage = (ctx: Context, status: number, extra: Record<string, unknown>, errorCode?: string) =>
    page(ctx, status, 'settings/profile', {
      title: 'Profile and visibility',
      ...nav(ctx, 'profile'),
      profile: account(ctx),
      visibility: visibilityOf(account(ctx)),
      fields: PROFILE_FIELDS,
      ...extra,
    }, errorCode);

  router.get('/profile', signedIn, (ctx) => {
    const outcome = typeof ctx.query.avatar === 'string' ? ctx.query.avatar : '';
    const known = ['avatar.invalid', 'avatar.too_large', 'avatar.missing'].includes(outcome);
    profilePage(ctx, known ? 400 : 200, { avatarSaved: outcome === 'saved', avatarRemoved: outcome === 'removed', saved: flash.take(ctx).done === 'profile' }, known ? outcome : undefined);
  });

  router.post('/profile', signedIn, async (ctx) => {
    const { _csrf: _token, ...body } = (ctx.request.body ?? {}) as Record<string, unknown>;
    const parsed = profileUpdate.safeParse(body);
    if (!parsed.success) {
      // The form comes back as it was typed, with the fields at fault marked: nothing typed is lost.
      const typed = Object.fromEntries(PROFILE_FIELDS.flatMap((field) => (typeof body[field] === 'string' ? [[field, body[field]]] : [])));
      const chosen = (body.visibility ?? {}) as Record<string, unknown>;
      const visibility = { ...visibilityOf(account(ctx)), ...Object.fromEntries(PROFILE_FIELDS.flatMap((field) => (typeof chosen[field] === 'string' && VISIBILITIES.includes(chosen[field] as never) ? [[field, chosen[field]]] : []))) };
      const invalid = [...new Set(parsed.error.issues.map((issue) => String(issue.path[0] === 'visibility' ? issue.path[1] : issue.path[0])))];
      return profilePage(ctx, 400, { profile: { ...account(ctx), ...typed }, visibility, invalid }, 'profile.invalid');
    }
    await accounts.updateProfile(account(ctx), parsed.data);
    done(ctx, '/account/profile', { done: 'profile' });
  });

  router.get('/email', signedIn, async (ctx) => {
    const outcome = flash.take(ctx);
    page(ctx, 200, 'settings/email', { title: 'Email address', ...nav(ctx, 'email'), ...(await managedBy(ctx)), pending: await deps.emailChanges.pending(account(ctx).id), sentTo: outcome.done === 'email' ? outcome.to : undefined, newEmail: '', confirm: await confirmView(ctx, '/account/email') });
  });

  router.post('/email', signedIn, async (ctx) => {
    const input = parseForm(ctx, changeEmailInput);
    const result = await sensitive(ctx, input.password, (proof) => deps.emailChanges.request(account(ctx).id, proof, input.email));
    // The field at fault is marked for assistive technology: the address's problems on the address.
    const field = result.ok ? undefined : result.problem === 'login.invalid_email' || result.problem === 'email.same' ? 'email' : result.problem === 'password.current_wrong' ? 'password' : undefined;
    if (!result.ok) return page(ctx, result.problem === 'account.managed' ? 403 : statusOf(result.problem), 'settings/email', { title: 'Email address', ...nav(ctx, 'email'), ...(await managedBy(ctx)), newEmail: input.email, field, confirm: await confirmView(ctx, '/account/email') }, result.problem);
    done(ctx, '/account/email', { done: 'email', to: result.newEmail });
  });

  // The link from the new address's inbox. It needs no session: the request was confirmed by a
  // recent login or the password, and the link proves the new address is the person's. Opening
  // it only shows what would change; the button does it (a mail scanner fetching the link
  // changes nothing, decision 0075).
  router.get('/email/verify', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const preview = await deps.emailChanges.preview(token);
    if (!preview.ok) return page(ctx, 400, 'errors/error', { ...messageFor(preview.problem) });
    page(ctx, 200, 'settings/email-confirm', { title: 'Confirm your new email address', newEmail: preview.newEmail, token });
  });

  router.post('/email/verify', async (ctx) => {
    const input = parseForm(ctx, emailVerifyInput);
    const result = await deps.emailChanges.confirm(input.token, requestMeta(ctx));
    if (!result.ok) return page(ctx, 400, 'errors/error', { ...messageFor(result.problem) });
    ctx.state.log?.info({ accountId: result.account.id }, 'email address changed');
    // Post/Redirect/Get: a reload or Back shows that the address changed, not the spent link's
    // "your address has not changed".
    done(ctx, '/account/email/changed', { done: 'email_changed', email: result.account.email });
  });

  router.get('/email/changed', (ctx) => {
    const outcome = flash.shown(ctx, 'email_changed', '/account/email');
    if (outcome) page(ctx, 200, 'settings/email-changed', { title: 'Email address changed', email: outcome.email });
  });

  // "This wasn't me": the link the old address got (decision 0085). No session: whoever changed
  // the address may hold every session there is. Opening it shows what would change; the button
  // does it, as for the confirmation link (a mail scanner changes nothing).
  router.get('/email/undo', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const preview = await deps.emailChanges.previewUndo(token);
    // Back to the link's page after using it, in the same browser: what it did, not "can't be used".
    if (!preview.ok && flash.peek(ctx).done === 'email_undone') {
      ctx.status = 303;
      return ctx.redirect('/account/email/undone');
    }
    if (!preview.ok) return page(ctx, 400, 'errors/error', { ...messageFor(preview.problem) });
    page(ctx, 200, 'settings/email-undo', { title: 'Undo the change of your email address', oldEmail: preview.oldEmail, newEmail: preview.newEmail, token });
  });

  router.post('/email/undo', async (ctx) => {
    const input = parseForm(ctx, emailVerifyInput);
    const result = await deps.emailChanges.undo(input.token, requestMeta(ctx));
    if (!result.ok) return page(ctx, result.problem === 'email.undo_taken' ? 409 : 400, 'errors/error', { ...messageFor(result.problem) });
    ctx.state.log?.info({ accountId: result.accountId }, 'email address change undone from the old address');
    done(ctx, '/account/email/undone', { done: 'email_undone', email: result.email });
  });

  router.get('/email/undone', (ctx) => {
    const outcome = flash.shown(ctx, 'email_undone', '/account');
    if (outcome) page(ctx, 200, 'settings/email-undone', { title: 'Your email address is back', email: outcome.email });
  });

  const closePage = async (ctx: Context) => ({ title: 'Close your account', ...nav(ctx, 'close'), ...(await managedBy(ctx)), graceDays: deps.graceDays, confirm: await confirmView(ctx, '/account/close') });

  router.get('/close', signedIn, async (ctx) => page(ctx, 200, 'settings/close', await closePage(ctx)));

  router.post('/close', signedIn, async (ctx) => {
    const input = parseForm(ctx, closeAccountInput);
    const result = await sensitive(ctx, input.password, (proof) => deps.closure.close(account(ctx).id, proof, requestMeta(ctx)));
    if (!result.ok) return page(ctx, result.problem === 'account.managed' ? 403 : statusOf(result.problem), 'settings/close', await closePage(ctx), result.problem);
    ctx.state.log?.info({ accountId: account(ctx).id }, 'account closed by its owner');
    // Post/Redirect/Get: the session ended with the closure, so a reload of the form's answer
    // said "sign in again"; the outcome's own page says the account is closed.
    done(ctx, '/account/closed', { done: 'closed', deleteAfter: displayTime(result.deleteAfter) });
  });

  router.get('/closed', (ctx) => {
    const outcome = flash.shown(ctx, 'closed', '/account');
    if (outcome) page(ctx, 200, 'settings/closed', { title: 'Account closed', deleteAfter: outcome.deleteAfter });
  });

  return router;
}
