import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { Attempt, Throttle } from '../../identity/throttle.ts';
import type { TwoStepService } from '../../identity/two-step.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import { AppError } from '../../shared/errors.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { waitMessage, type PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { qrCodeSvg, recoveryCodesFile } from '../two-step-pages.ts';
import { secondStepInput } from './schema.ts';

/**
 * The second step of a login (docs/flows/two-step.md). After the password (or a new sign-up),
 * `afterFirstFactor` either finishes the login, asks for a code, or — when two-step verification
 * is required and not set up — has the person set it up before continuing.
 *
 * Between the steps, which account passed the first factor is carried in a signed cookie scoped
 * to this interaction's path and valid for ten minutes. It is never written into the engine's
 * interaction result: the engine would accept that result on its resume endpoint, skipping the
 * second step.
 */
const PENDING_COOKIE = 'lanyard.login_pending';
const PENDING_SECONDS = 600;

type Stage = 'verify' | 'enrol' | 'enrolled';
interface Pending { uid: string; accountId: string; amr: string[]; stage: Stage; exp: number; reopen?: boolean }

export function secondStepRoutes(deps: {
  interactions: Interactions;
  accounts: AccountService;
  twoStep: TwoStepService;
  throttle: Throttle;
  events: SecurityEvents;
  views: Views;
  box: SecretBox;
  now: () => number;
  /** Work proven earlier in the interaction that waits for the whole login (a Trello link). */
  beforeFinish?: (ctx: Context, it: { uid: string; clientId: string; accountId: string }) => Promise<void>;
}) {
  const { interactions, accounts, twoStep, throttle, events, views } = deps;
  const router = new Router({ prefix: '/interaction/:uid/two-step' });

  const page = pageRenderer(views);

  const cookieOptions = (uid: string) => ({ httpOnly: true, sameSite: 'lax' as const, path: `/interaction/${uid}`, signed: true, overwrite: true });

  function setPending(ctx: Context, uid: string, pending: Omit<Pending, 'exp' | 'uid'>) {
    const value: Pending = { ...pending, uid, exp: Math.floor(deps.now() / 1000) + PENDING_SECONDS };
    ctx.cookies.set(PENDING_COOKIE, Buffer.from(JSON.stringify(value)).toString('base64url'), { ...cookieOptions(uid), secure: ctx.secure, maxAge: PENDING_SECONDS * 1000 });
  }

  /** The account that passed the first factor in this interaction, at `stage`. */
  async function pending(ctx: Context, stage: Stage[]): Promise<{ uid: string; clientId: string; clientName: string; state: Pending; account: AccountRow }> {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
    const raw = ctx.cookies.get(PENDING_COOKIE, { signed: true });
    let state: Pending | undefined;
    try {
      state = raw ? (JSON.parse(Buffer.from(raw, 'base64url').toString()) as Pending) : undefined;
    } catch {
      state = undefined;
    }
    // Bound to this interaction: a cookie carried over to another one (its path is only a hint
    // to browsers) proves nothing there.
    if (!state || state.uid !== view.uid || state.exp < deps.now() / 1000 || !stage.includes(state.stage)) throw new AppError('login.second_step_expired', 400);
    const account = await accounts.findById(state.accountId);
    const usable = account?.status === 'active' || (state.reopen && account?.status === 'closed');
    if (!account || !usable) throw new AppError('login.second_step_expired', 400);
    const client = await interactions.client(view.clientId);
    return { uid: view.uid, clientId: view.clientId, clientName: client?.name ?? view.clientId, state, account };
  }

  async function finish(ctx: Context, uid: string, clientId: string, accountId: string, amr: string[], method: string | undefined, reopen = false) {
    ctx.cookies.set(PENDING_COOKIE, null, cookieOptions(uid));
    // The owner closed it and came back within the grace period: the whole login proves it.
    if (reopen && !(await accounts.reopen(accountId))) throw new AppError('login.account_inactive', 403);
    await deps.beforeFinish?.(ctx, { uid, clientId, accountId });
    await events.record({ type: 'login.succeeded', accountId, detail: { amr } }, requestMeta(ctx, clientId));
    ctx.state.log?.info({ accountId, clientId, method }, 'login succeeded');
    await interactions.finishLogin(ctx, { accountId, amr });
  }

  // The secret being enrolled waits sealed in this browser, bound to this interaction; nothing
  // about it is stored until the first correct code, and nobody else is ever shown it.
  const enrolCookie = sealedCookie<{ secret: string }>(deps.box, deps.now, { name: 'lanyard.login_enrol', ttlSeconds: PENDING_SECONDS });
  const sealFor = (uid: string) => `login_enrol:${uid}`;
  const keptSecret = (ctx: Context, uid: string) => enrolCookie.get(ctx, sealFor(uid))?.secret;

  async function enrolPage(ctx: Context, it: { uid: string; clientName: string; account: AccountRow }, status: number, error?: PageError) {
    const kept = keptSecret(ctx, it.uid);
    const enrolment = kept ? twoStep.enrolmentFor(it.account, kept) : await twoStep.startEnrolment(it.account);
    if ('problem' in enrolment) throw new AppError('interaction.expired', 400);
    if (!kept) enrolCookie.set(ctx, `/interaction/${it.uid}`, sealFor(it.uid), { secret: enrolment.secret });
    page(ctx, status, 'login/enrol', {
      title: 'Set up two-step verification',
      uid: it.uid,
      clientName: it.clientName,
      secret: enrolment.secret,
      qr: await qrCodeSvg(enrolment.uri),
    }, error);
  }

  /** A failed code: counted against the account and the address, logged, the page shown again. */
  async function refused(ctx: Context, gate: Attempt, accountId: string, clientId: string, problem: string): Promise<PageError> {
    const wait = await throttle.failed('second-step', ctx.ip, gate);
    await events.record({ type: 'login.failed', accountId, reason: 'second_step_failed' }, requestMeta(ctx, clientId));
    return wait > 0 ? waitMessage(ctx, wait) : problem;
  }

  router.post('/', async (ctx) => {
    const it = await pending(ctx, ['verify']);
    const input = parseForm(ctx, secondStepInput);
    const data = { title: 'Two-step verification', uid: it.uid, clientName: it.clientName };
    const gate = await throttle.attempt('second-step', it.account.id, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'login/two-step', data, waitMessage(ctx, gate.retryAfterSeconds));
    const result = await twoStep.verify(it.account, input.code, requestMeta(ctx, it.clientId));
    if (!result.ok) return page(ctx, 401, 'login/two-step', data, await refused(ctx, gate, it.account.id, it.clientId, result.problem));
    await throttle.succeeded('second-step', it.account.id);
    // RFC 8176: "otp" for the authenticator code, "mfa" for more than one factor in all.
    const amr = result.method === 'totp' ? [...it.state.amr, 'otp', 'mfa'] : [...it.state.amr, 'mfa'];
    await finish(ctx, it.uid, it.clientId, it.account.id, amr, result.method, it.state.reopen);
  });

  router.get('/enrol', async (ctx) => {
    const it = await pending(ctx, ['enrol']);
    await enrolPage(ctx, it, 200);
  });

  router.post('/enrol', async (ctx) => {
    const it = await pending(ctx, ['enrol']);
    const input = parseForm(ctx, secondStepInput);
    const gate = await throttle.attempt('second-step', it.account.id, ctx.ip);
    if (!gate.ok) return enrolPage(ctx, it, 429, waitMessage(ctx, gate.retryAfterSeconds));
    const secret = keptSecret(ctx, it.uid);
    if (!secret) return enrolPage(ctx, it, 400, 'two_step.enrolment_expired');
    const result = await twoStep.confirmEnrolment(it.account, secret, input.code, requestMeta(ctx, it.clientId));
    if (!result.ok) return enrolPage(ctx, it, 400, await refused(ctx, gate, it.account.id, it.clientId, result.problem));
    await throttle.succeeded('second-step', it.account.id);
    enrolCookie.clear(ctx, `/interaction/${it.uid}`);
    setPending(ctx, it.uid, { accountId: it.account.id, amr: [...it.state.amr, 'otp', 'mfa'], stage: 'enrolled', reopen: it.state.reopen ?? false });
    page(ctx, 200, 'login/recovery-codes', {
      title: 'Save your recovery codes',
      uid: it.uid,
      clientName: it.clientName,
      codes: result.recoveryCodes,
      download: recoveryCodesFile(it.account.email, result.recoveryCodes),
    });
  });

  router.post('/continue', async (ctx) => {
    const it = await pending(ctx, ['enrolled']);
    await finish(ctx, it.uid, it.clientId, it.account.id, it.state.amr, 'enrolment', it.state.reopen);
  });

  return {
    router,

    /**
     * Called once the first factor is proven (password, or a sign-up that chose one): finishes
     * the login, or asks for the second step, or requires enrolment first.
     */
    async afterFirstFactor(ctx: Context, it: { uid: string; clientId: string; clientName: string }, account: AccountRow, amr: string[], options: { reopen?: boolean } = {}): Promise<void> {
      const reopen = options.reopen ?? false;
      if (account.two_step_enabled ?? (await twoStep.isEnabled(account.id))) {
        setPending(ctx, it.uid, { accountId: account.id, amr, stage: 'verify', reopen });
        return page(ctx, 200, 'login/two-step', { title: 'Two-step verification', uid: it.uid, clientName: it.clientName });
      }
      if (twoStep.required(account)) {
        setPending(ctx, it.uid, { accountId: account.id, amr, stage: 'enrol', reopen });
        ctx.status = 303;
        return ctx.redirect(`/interaction/${it.uid}/two-step/enrol`);
      }
      await finish(ctx, it.uid, it.clientId, account.id, amr, amr.join('+'), reopen);
    },
  };
}

export type SecondStep = ReturnType<typeof secondStepRoutes>;
