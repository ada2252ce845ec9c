import type { Context } from 'koa';
import type { AccountRow } from '../../identity/accounts.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { Throttle } from '../../identity/throttle.ts';
import type { TwoStepService } from '../../identity/two-step.ts';
import type { LoginFlow, LoginFlows, LoginStep } from '../../oidc/login-flows.ts';
import type { Policy } from '../../policy/policy.ts';
import { AppError } from '../../shared/errors.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import type { PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { recoveryCodesFile, totpSetupView } from '../two-step-pages.ts';
import { throttled } from '../throttled.ts';
import type { LoginContext } from './interaction.ts';
import { secondStepInput } from './schema.ts';
import type { LoginStrategy } from './strategy.ts';

/**
 * The second factor's strategy (docs/flows/two-step.md): an authenticator code or a recovery
 * code, and the enrolment a policy may require first. Which account passed the first factor,
 * and with which methods, is the interaction's flow record (src/oidc/login-flows.ts), written by
 * the completion service when the decision point answered "second factor" or "enrol"; it is
 * never the engine's interaction result, which the engine would honour on its resume endpoint
 * and so skip this step (decision 0012).
 */
export function secondStepStrategy(deps: {
  twoStep: TwoStepService;
  policy: Policy;
  flows: LoginFlows;
  throttle: Throttle;
  events: SecurityEvents;
  views: Views;
  box: SecretBox;
  now: () => number;
}): LoginStrategy {
  const { twoStep, throttle, events, flows } = deps;
  const page = pageRenderer(deps.views);

  /** The flow at one of `steps`, and its account — still one the decision point lets prove a second factor. */
  async function pending(it: LoginContext, steps: LoginStep[]): Promise<{ flow: LoginFlow; account: AccountRow }> {
    const flow = await flows.find(it.uid);
    if (!flow?.accountId || !steps.includes(flow.step)) throw new AppError('login.second_step_expired', 400);
    const loaded = await deps.policy.load(flow.accountId);
    if (!loaded) throw new AppError('login.second_step_expired', 400);
    // Deactivated (or closed past its grace) since the first factor: no code is asked for.
    const decision = deps.policy.decide({ subject: loaded.subject, stage: 'second_factor', method: 'totp', wantedAcr: it.wantedAcr });
    if (decision.outcome === 'deny') {
      await flows.end(it.uid);
      throw new AppError(decision.reason, 403);
    }
    return { flow, account: loaded.account };
  }

  // The secret being enrolled waits sealed in this browser, bound to this interaction: nothing
  // about it is stored until the first correct code (then it is the account's factor), so a
  // secret shown to nobody else is never in the database or its backups (decision 0026).
  const enrolCookie = sealedCookie<{ secret: string }>(deps.box, deps.now, { name: 'lanyard.login_enrol', ttlSeconds: 600 });
  const sealFor = (uid: string) => `login_enrol:${uid}`;
  const keptSecret = (ctx: Context, uid: string) => enrolCookie.get(ctx, sealFor(uid))?.secret;

  // The recovery codes, once the first correct code has turned two-step verification on: shown by
  // a GET of their own page (Post/Redirect/Get), so that a reload or Back shows them again rather
  // than sending the confirmed code once more and stranding the person with two-step verification
  // on and the codes gone from view. Only their hashes are stored; until "I saved them" (or ten
  // minutes) the codes wait sealed in this browser, bound to this interaction, as the secret does.
  const codesCookie = sealedCookie<{ codes: string[] }>(deps.box, deps.now, { name: 'lanyard.login_codes', ttlSeconds: 600 });
  const codesFor = (uid: string) => `login_codes:${uid}`;

  async function enrolPage(ctx: Context, it: LoginContext, account: AccountRow, status: number, error?: PageError) {
    const kept = keptSecret(ctx, it.uid);
    const enrolment = kept ? twoStep.enrolmentFor(account, kept) : await twoStep.startEnrolment(account);
    if ('problem' in enrolment) throw new AppError('interaction.expired', 400);
    if (!kept) enrolCookie.set(ctx, `/interaction/${it.uid}`, sealFor(it.uid), { secret: enrolment.secret });
    page(ctx, status, 'login/enrol', { title: 'Set up two-step verification', uid: it.uid, clientName: it.clientName, ...(await totpSetupView(enrolment)) }, error);
  }

  /** A failed code: counted in the flow, audited. */
  async function failed(ctx: Context, it: LoginContext, accountId: string) {
    const attempts = await flows.failed(it.uid);
    await events.record({ type: 'login.failed', accountId, reason: 'second_step_failed' }, requestMeta(ctx, it.clientId));
    ctx.state.log?.info({ accountId, clientId: it.clientId, attempts }, 'second step failed');
  }

  return {
    name: 'second-step',
    methods: ['totp', 'recovery_code'],
    steps: [
      {
        method: 'get',
        path: '/two-step',
        async handle(ctx, it) {
          await pending(it, ['second_factor']);
          page(ctx, 200, 'login/two-step', { title: 'Two-step verification', uid: it.uid, clientName: it.clientName });
        },
      },
      {
        method: 'post',
        path: '/two-step',
        async handle(ctx, it) {
          const { flow, account } = await pending(it, ['second_factor']);
          const input = parseForm(ctx, secondStepInput);
          const data = { title: 'Two-step verification', uid: it.uid, clientName: it.clientName };
          const t = await throttled(ctx, throttle, { scope: 'second-step', subject: account.id }, () => twoStep.verify(account, input.code, requestMeta(ctx, it.clientId)), (r) => (r.ok ? 'passed' : 'failed'));
          if (t.refused) return page(ctx, 429, 'login/two-step', data, t.error);
          if (!t.result.ok) {
            await failed(ctx, it, account.id);
            return page(ctx, 401, 'login/two-step', data, t.orWait(t.result.problem));
          }
          // RFC 8176: "otp" for the authenticator code, "mfa" for more than one factor in all.
          return t.result.method === 'totp'
            ? { account, flow, method: 'totp', amr: ['otp', 'mfa'], via: 'two-step' }
            : { account, flow, method: 'recovery_code', amr: ['mfa'], via: 'two-step' };
        },
      },
      {
        method: 'get',
        path: '/two-step/enrol',
        async handle(ctx, it) {
          const { flow, account } = await pending(it, ['enrol', 'enrolled']);
          // Back from the codes page: it is on already, the codes are what is left to see.
          if (flow.step === 'enrolled') {
            ctx.status = 303;
            return ctx.redirect(`/interaction/${it.uid}/two-step/codes`);
          }
          await enrolPage(ctx, it, account, 200);
        },
      },
      {
        method: 'post',
        path: '/two-step/enrol',
        async handle(ctx, it) {
          const { flow, account } = await pending(it, ['enrol', 'enrolled']);
          // The form sent again once it is on (Back to a mistyped code's page, then resent): the
          // codes are what is left to see, as for the GET.
          if (flow.step === 'enrolled') {
            ctx.status = 303;
            return ctx.redirect(`/interaction/${it.uid}/two-step/codes`);
          }
          const input = parseForm(ctx, secondStepInput);
          const secret = keptSecret(ctx, it.uid);
          const t = await throttled(ctx, throttle, { scope: 'second-step', subject: account.id }, async () => (secret ? twoStep.confirmEnrolment(account, secret, input.code, requestMeta(ctx, it.clientId)) : undefined), (r) => (r?.ok ? 'passed' : r ? 'failed' : 'kept'));
          if (t.refused) return enrolPage(ctx, it, account, 429, t.error);
          if (!t.result) return enrolPage(ctx, it, account, 400, 'two_step.enrolment_expired');
          if (!t.result.ok) {
            await failed(ctx, it, account.id);
            return enrolPage(ctx, it, account, 400, t.orWait(t.result.problem));
          }
          enrolCookie.clear(ctx, `/interaction/${it.uid}`);
          // Set up and confirmed: the login finishes once the codes are saved ("continue").
          await flows.save(it, { step: 'enrolled', accountId: account.id, amr: flow.amr, trello: flow.trello });
          codesCookie.set(ctx, `/interaction/${it.uid}`, codesFor(it.uid), { codes: t.result.recoveryCodes });
          ctx.status = 303;
          ctx.redirect(`/interaction/${it.uid}/two-step/codes`);
        },
      },
      {
        method: 'get',
        path: '/two-step/codes',
        async handle(ctx, it) {
          const { account } = await pending(it, ['enrolled']);
          const codes = codesCookie.get(ctx, codesFor(it.uid))?.codes;
          page(ctx, 200, 'login/recovery-codes', {
            title: 'Save your recovery codes',
            uid: it.uid,
            clientName: it.clientName,
            codes: codes ?? [],
            download: codes ? recoveryCodesFile(account.email, codes) : undefined,
          });
        },
      },
      {
        method: 'post',
        path: '/two-step/continue',
        async handle(ctx, it) {
          const { flow, account } = await pending(it, ['enrolled']);
          codesCookie.clear(ctx, `/interaction/${it.uid}`);
          return { account, flow, method: 'totp', amr: ['otp', 'mfa'], via: 'enrolment' };
        },
      },
    ],
  };
}
