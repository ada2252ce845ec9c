import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { Reauthentication } from '../../identity/reauthentication.ts';
import type { SecurityEvents, SecurityEventType, SecurityEventView } from '../../identity/security-events.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { throttled } from '../throttled.ts';
import { BUSY, isBusy } from '../busy.ts';
import { logError } from '../../http/error-handler.ts';
import type { TwoStepService } from '../../identity/two-step.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { waitMessage, type PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { parseForm } from '../../http/validate.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { recoveryCodesFile, totpSetupView } from '../two-step-pages.ts';
import { describeDevice } from './routes.ts';
import { settingsKit } from './gate.ts';
import { privilegedSession } from './privileged-session.ts';
import { confirmCodeInput, disableTwoStepInput, newRecoveryCodesInput, passwordOnlyInput } from './schema.ts';
import { displayTime } from '../../shared/display-time.ts';
import { flashMessages } from '../../http/flash.ts';

/**
 * How each audit event reads in "Recent security activity": every type has its words (a missing
 * one fails the type check), some with what the event's details add.
 */
const DESCRIPTIONS: Record<SecurityEventType, string | ((detail: Record<string, unknown>) => string)> = {
  'login.succeeded': 'Logged in',
  'login.failed': 'Failed login',
  logout: 'Logged out',
  'password.changed': 'Password changed',
  'password.reset': 'Password reset by email',
  'email.changed': 'Email address changed',
  'email.change_undone': 'Email address change undone from the old address: signed out everywhere, password cleared',
  'two_step.enabled': 'Two-step verification turned on',
  'two_step.disabled': 'Two-step verification turned off',
  'two_step.recovery_codes_regenerated': 'New recovery codes made',
  'recovery_code.used': 'Recovery code used',
  'session.revoked': 'Signed out a session',
  'grant.revoked': 'App access removed',
  'account.closed': 'Account closed',
  'account.reopened': 'Account reopened by a login (its closure cancelled)',
  'account.deactivated': 'Account deactivated',
  'trello.linked': 'Trello account linked',
  'identity.linked': (d) => (d.provider === 'google' ? 'Google sign-in linked' : d.provider === 'sso' ? 'Company sign-in linked' : 'Sign-in linked'),
  'login.retired_email': (d) => `Login tried with a retired address${typeof d.tried === 'string' ? ` (${d.tried})` : ''}`,
  'organization.account_updated': 'Your organization’s admin changed your name or address',
  'organization.account_deactivated': 'Your organization’s admin deactivated the account',
  'organization.account_reactivated': 'Your organization’s admin reactivated the account',
  'organization.account_deletion_scheduled': 'Your organization’s admin deleted the account (erased after a grace period)',
  'organization.account_deletion_cancelled': 'Your organization’s admin cancelled the account’s deletion',
  'organization.account_released': (d) => (typeof d.organization === 'string' ? `${d.organization} no longer manages the account` : 'Your organization no longer manages the account'),
  'organization.deleted': (d) => (typeof d.organization === 'string' ? `The organization ${d.organization}, which you were an admin of, was deleted` : 'An organization you were an admin of was deleted'),
};

const REASONS: Record<string, string> = {
  wrong_password: 'wrong password',
  no_password: 'no password set',
  inactive: 'account inactive',
  throttled: 'too many attempts',
  second_step_failed: 'wrong two-step code',
};

/** One event in words; `apps` names the clients (an app's name, not its id). */
export function describeEvent(event: SecurityEventView, apps: ReadonlyMap<string, string> = new Map()): { what: string; when: string; where: string } {
  const reason = event.reason ? REASONS[event.reason] ?? event.reason : undefined;
  const words = DESCRIPTIONS[event.type as SecurityEventType] ?? event.type;
  const what = typeof words === 'function' ? words(event.detail ?? {}) : words;
  const app = event.clientId ? apps.get(event.clientId) ?? event.clientId : undefined;
  return {
    what: `${what}${reason ? ` (${reason})` : ''}${app ? ` — ${app}` : ''}`,
    when: displayTime(event.at),
    // An event about someone else's action (an admin's) carries neither: nothing to say then.
    where: [event.userAgent ? describeDevice(event.userAgent) : '', event.ip].filter(Boolean).join(', '),
  };
}

/**
 * Settings → Security (docs/flows/two-step.md, docs/flows/security-activity.md): two-step
 * verification on and off, recovery codes, and the account's recent security activity.
 * Every password or code typed here is throttled like at login.
 */
export function securityRoutes(deps: {
  views: Views;
  sessions: BrowserSessions;
  accounts: AccountService;
  twoStep: TwoStepService;
  events: SecurityEvents;
  throttle: Throttle;
  reauthentication: Reauthentication;
  box: SecretBox;
  now: () => number;
  /** The registered clients' names by id, for the activity list. */
  appNames: () => Promise<ReadonlyMap<string, string>>;
}) {
  const { twoStep, events, throttle } = deps;
  const { page, signedIn, account, nav, login } = settingsKit(deps);
  const { confirmView, sensitive, statusOf } = privilegedSession({ reauthentication: deps.reauthentication, throttle, account, login });
  const router = new Router({ prefix: '/account/security' });
  // A change that succeeded answers 303 to the page (Post/Redirect/Get): reloading it shows the
  // page again instead of sending the form a second time.
  const flash = flashMessages({ name: 'lanyard.flash', path: '/account' });

  async function overview(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: PageError) {
    const acc = account(ctx);
    const [state, recent, confirm, confirmOff, apps] = await Promise.all([
      twoStep.status(acc.id),
      events.page(acc.id, { limit: 15 }),
      confirmView(ctx, '/account/security'),
      confirmView(ctx, '/account/security', 'disable_factor'),
      deps.appNames(),
    ]);
    page(ctx, status, 'settings/security', {
      title: 'Security',
      ...nav(ctx, 'security'),
      twoStep: state,
      // The decision point refuses turning it off (`disable_factor`): the form is not shown.
      required: confirmOff.denied === 'policy.two_step_required',
      // Changes here are confirmed by a recent login, or by what the decision point lists: the
      // password typed here, or a new login (Google, for an account without a password).
      confirm,
      confirmOff,
      enabledAt: state.enabledAt ? displayTime(state.enabledAt) : undefined,
      events: recent.events.map((e) => describeEvent(e, apps)),
      hasPassword: Boolean(acc.password_hash),
      ...extra,
    }, error);
  }

  // The secret being enrolled waits sealed in this browser, bound to its session, for 15 minutes;
  // nothing about it is stored until the first correct code.
  const enrolCookie = sealedCookie<{ secret: string }>(deps.box, deps.now, { name: 'lanyard.enrol', ttlSeconds: 900 });
  const sealFor = (ctx: Context) => `enrol:${ctx.state.sessionUid as string}`;
  const keptSecret = (ctx: Context) => enrolCookie.get(ctx, sealFor(ctx))?.secret;

  async function enrolPage(ctx: Context, status: number, error?: PageError) {
    const secret = keptSecret(ctx);
    if (!secret) return overview(ctx, 400, {}, 'two_step.enrolment_expired');
    const enrolment = twoStep.enrolmentFor(account(ctx), secret);
    page(ctx, status, 'settings/two-step-enrol', { title: 'Turn on two-step verification', ...nav(ctx, 'security'), ...(await totpSetupView(enrolment)) }, error);
  }

  /** A change confirmed by a recent login or the password typed (throttled like at login). */
  const confirmed = (ctx: Context, typed: string) => sensitive(ctx, typed, (proof) => deps.reauthentication.confirm(account(ctx), proof));

  // New recovery codes (two-step verification turned on, or codes made again) are shown by a GET
  // of their own page (Post/Redirect/Get): a reload or Back shows the same codes instead of
  // sending the form again — which stranded the person on "Start again" with two-step verification
  // on, or silently made another set and voided the one just saved. Only their hashes are stored;
  // until the person leaves the page for the overview (or ten minutes) they wait sealed in this
  // browser, bound to its session, as at login (src/flows/login/second-step.ts).
  const codesCookie = sealedCookie<{ codes: string[]; title: string }>(deps.box, deps.now, { name: 'lanyard.codes', ttlSeconds: 600 });
  const codesFor = (ctx: Context) => `codes:${ctx.state.sessionUid as string}`;

  function showCodes(ctx: Context, codes: string[], title: string) {
    codesCookie.set(ctx, '/account/security', codesFor(ctx), { codes, title });
    ctx.status = 303;
    ctx.redirect('/account/security/recovery-codes');
  }

  router.get('/recovery-codes', signedIn, (ctx) => {
    const kept = codesCookie.get(ctx, codesFor(ctx));
    if (!kept) {
      ctx.status = 303;
      return ctx.redirect('/account/security');
    }
    page(ctx, 200, 'settings/recovery-codes', { title: kept.title, ...nav(ctx, 'security'), codes: kept.codes, download: recoveryCodesFile(account(ctx).email, kept.codes) });
  });

  router.get('/', signedIn, (ctx) => {
    codesCookie.clear(ctx, '/account/security');
    return overview(ctx, 200, { disabled: flash.take(ctx).done === 'two_step_off' });
  });

  router.post('/two-step/start', signedIn, async (ctx) => {
    // A stolen session alone must not be able to put its own authenticator on the account: a
    // recent login, or the password typed now.
    const input = parseForm(ctx, passwordOnlyInput);
    const ok = await confirmed(ctx, input.password);
    if (!ok.ok) return overview(ctx, statusOf(ok.problem), {}, ok.problem);
    const enrolment = await twoStep.startEnrolment(account(ctx));
    if ('problem' in enrolment) return overview(ctx, 409, {}, enrolment.problem);
    enrolCookie.set(ctx, '/account/security', sealFor(ctx), { secret: enrolment.secret });
    page(ctx, 200, 'settings/two-step-enrol', { title: 'Turn on two-step verification', ...nav(ctx, 'security'), ...(await totpSetupView(enrolment)) });
  });

  router.post('/two-step/confirm', signedIn, async (ctx) => {
    const input = parseForm(ctx, confirmCodeInput);
    const acc = account(ctx);
    const secret = keptSecret(ctx);
    // A missing secret or a factor already on proves nothing either way: the attempt stays counted.
    const guarded = await throttled(ctx, throttle, { scope: 'second-step', subject: acc.id },
      async () => (secret ? twoStep.confirmEnrolment(acc, secret, input.code, requestMeta(ctx)) : undefined),
      (r) => (!r || (!r.ok && r.problem === 'two_step.already_enabled') ? 'kept' : r.ok ? 'passed' : 'failed'));
    if (guarded.refused) return enrolPage(ctx, 429, guarded.error);
    const result = guarded.result;
    if (!result) return overview(ctx, 400, {}, 'two_step.enrolment_expired');
    if (!result.ok) {
      if (result.problem === 'two_step.already_enabled') return overview(ctx, 409, {}, result.problem);
      return enrolPage(ctx, 400, guarded.orWait(result.problem));
    }
    enrolCookie.clear(ctx, '/account/security');
    ctx.state.log?.info({ accountId: acc.id }, 'two-step verification turned on');
    showCodes(ctx, result.recoveryCodes, 'Two-step verification is on');
  });

  router.post('/recovery-codes', signedIn, async (ctx) => {
    const input = parseForm(ctx, newRecoveryCodesInput);
    const acc = account(ctx);
    // With a recent login nothing is typed: the click first gets a page saying that the codes
    // kept until now stop working, and only its button makes new ones (as turning two-step off).
    if (!input.password && !input.confirmed && (await deps.reauthentication.options(acc, login(ctx))).fresh) {
      if (!(await twoStep.status(acc.id)).enabled) return overview(ctx, 409, {}, 'two_step.not_enabled');
      return page(ctx, 200, 'settings/recovery-codes-confirm', { title: 'Make new recovery codes', ...nav(ctx, 'security') });
    }
    const ok = await confirmed(ctx, input.password);
    if (!ok.ok) return overview(ctx, statusOf(ok.problem), {}, ok.problem);
    const codes = await twoStep.regenerateRecoveryCodes(acc, requestMeta(ctx));
    if (!codes) return overview(ctx, 409, {}, 'two_step.not_enabled');
    showCodes(ctx, codes, 'New recovery codes');
  });

  router.post('/two-step/disable', signedIn, async (ctx) => {
    const input = parseForm(ctx, disableTwoStepInput);
    const acc = account(ctx);
    // The decision point refuses a required factor before any counter is touched: nothing is
    // being guessed, and the service asks it too.
    const off = await deps.reauthentication.options(acc, login(ctx), 'disable_factor');
    if (off.denied) {
      ctx.state.log?.warn({ accountId: acc.id }, 'refused turning off two-step verification');
      return overview(ctx, 403, {}, off.denied === 'policy.two_step_required' ? 'two_step.required' : off.denied);
    }
    // A recent login at two factors needs nothing typed, so one click would turn it off: that
    // click first gets a page that says what turning it off means, and only its button (which
    // says so) does it. A password and code typed are that decision already.
    // A code of blanks is no code (the service trims it too): it does not stand for the decision.
    if (off.fresh && !input.password && !input.code.trim() && !input.confirmed) {
      if (!(await twoStep.status(acc.id)).enabled) return overview(ctx, 409, {}, 'two_step.not_enabled');
      return page(ctx, 200, 'settings/two-step-disable', { title: 'Turn off two-step verification', ...nav(ctx, 'security'), hasPassword: Boolean(acc.password_hash) });
    }
    // What was typed is counted before the check (a wrong password leaves the code attempt
    // counted too: it must not become a way to reset the code counter). Nothing typed, nothing
    // guessed: a recent login at two factors alone turns it off. Two counters around one check
    // is the one sequence `throttled` (src/flows/throttled.ts) does not take; it stays spelled out.
    const codeGate = input.code.trim() ? await throttle.attempt('second-step', acc.id, ctx.ip) : undefined;
    if (codeGate && !codeGate.ok) return overview(ctx, 429, {}, waitMessage(ctx, codeGate.retryAfterSeconds));
    const passwordGate = input.password ? await throttle.attempt('password', acc.email, ctx.ip) : undefined;
    if (passwordGate && !passwordGate.ok) return overview(ctx, 429, {}, waitMessage(ctx, passwordGate.retryAfterSeconds));
    let result: Awaited<ReturnType<typeof twoStep.disable>>;
    try {
      result = await twoStep.disable(acc, { login: login(ctx), password: input.password || undefined }, input.code, requestMeta(ctx));
    } catch (err) {
      if (!isBusy(err)) throw err;
      // The password hashing was full: nothing was checked, both attempts are given back, and
      // the page answers 503 with Retry-After (decision 0063).
      if (passwordGate) await throttle.release(passwordGate);
      if (codeGate) await throttle.release(codeGate);
      logError(ctx.state.log, err, err);
      return overview(ctx, 503, {}, BUSY);
    }
    if (!result.ok) {
      // The right password with a wrong code: only the code counts against the person.
      if (passwordGate && result.problem !== 'password.current_wrong') await throttle.succeeded('password', acc.email);
      const wait = result.problem === 'password.current_wrong' && passwordGate ? await throttle.failed('password', ctx.ip, passwordGate)
        : (result.problem === 'two_step.code_invalid' || result.problem === 'two_step.code_used') && codeGate ? await throttle.failed('second-step', ctx.ip, codeGate) : 0;
      return overview(ctx, statusOf(result.problem), {}, wait > 0 ? waitMessage(ctx, wait) : result.problem);
    }
    if (passwordGate) await throttle.succeeded('password', acc.email);
    if (codeGate) await throttle.succeeded('second-step', acc.id);
    ctx.state.log?.info({ accountId: acc.id }, 'two-step verification turned off');
    flash.set(ctx, { done: 'two_step_off' });
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

  return router;
}
