import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import type { LoginFlow } from '../../oidc/login-flows.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { PasswordHasher } from '../../identity/password-hasher.ts';
import type { Made, Reservation, Throttle } from '../../identity/throttle.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import type { DenyReason, Policy, Subject } from '../../policy/policy.ts';
import type { Background } from '../../shared/background.ts';
import type { DeviceCookies } from '../../http/device-cookie.ts';
import type { PageRenderer } from '../../http/page.ts';
import { requestMeta } from '../../http/request-meta.ts';
import { AppError } from '../../shared/errors.ts';
import { logError } from '../../http/error-handler.ts';
import { BUSY, isBusy } from '../busy.ts';
import { parseForm } from '../../http/validate.ts';
import { throttled, type Throttled, type Verdict } from '../throttled.ts';
import type { LoginContext } from './interaction.ts';
import { passwordInput } from './schema.ts';
import { connectorStartPath, type LoginStrategy } from './strategy.ts';
import type { TrelloMigration } from './trello-migration.ts';

/** What the password typed turned out to be. */
type Checked =
  | { kind: 'account'; account: AccountRow }
  /** A retired address: answered like an unknown one, its account told which address to use. */
  | { kind: 'retired'; accountId: string }
  /** A Trello member's password: its review or "prove that account" has started (303 sent). */
  | { kind: 'trello'; verdict: Verdict }
  /** The old Trello password of the member linked to this account. */
  | { kind: 'trello_linked'; accountId: string }
  /** The decision point refused the Trello member. */
  | { kind: 'trello_refused'; reason: DenyReason }
  | { kind: 'wrong'; accountId: string | undefined; reason: string };

/**
 * The password step's one statement (src/oidc/password-step.ts, wired by the registry): the
 * subject `discover` would answer, the throttle's reservation made in it (none when an
 * organization holds the domain: reserved after the policy's answer), the account, the flow record.
 */
export interface PasswordStepReads {
  read(uid: string, email: string, reservation: Reservation): Promise<{ discovered: Subject; made: Made | undefined; account: AccountRow | undefined; flow: LoginFlow | undefined }>;
}

const VERDICT: Record<Checked['kind'], Verdict | undefined> = {
  account: 'passed', retired: 'failed', trello: undefined, trello_linked: 'failed', trello_refused: 'failed', wrong: 'failed',
};

/**
 * The password's strategy (docs/flows/login.md): the account's password, or — since the form is
 * the same — a legacy Trello member's (trello-migration.ts). It answers "email and password
 * don't match" for an unknown address and a wrong password alike, at the same cost, and
 * throttles both alike: failures are counted per address typed, known or not, and per client
 * address (src/identity/throttle.ts). The factor it proves goes to the completion service, which
 * asks the decision point whether this account may sign in and how.
 */
export function passwordStrategy(deps: {
  accounts: AccountService;
  throttle: Throttle;
  events: SecurityEvents;
  trello: TrelloMigration;
  linking: TrelloLinking;
  devices: DeviceCookies;
  hashing: Pick<PasswordHasher, 'full'>;
  background: Background;
  page: PageRenderer;
  policy: Pick<Policy, 'decide'>;
  step: PasswordStepReads;
}): LoginStrategy {
  const { accounts, throttle, events, page } = deps;

  /**
   * The hashing queue is full (issue 14, "Overload"; decision 0061): 503 with Retry-After, and the
   * password form again — the address kept, the password not echoed, the busy message above it —
   * so that the person tries again from here in a few seconds instead of starting the login over
   * (four requests of pages for an attempt that may be refused again).
   */
  function busy(ctx: Context, data: Record<string, unknown>): void {
    const err = new AppError(BUSY, 503);
    logError(ctx.state.log, err, err);
    // The renderer answers BUSY 503 with Retry-After (src/http/page.ts).
    page(ctx, 503, 'login/password', data, BUSY);
  }

  async function check(ctx: Context, it: LoginContext, email: string, password: string, account: AccountRow | undefined): Promise<Checked> {
    const result = await accounts.authenticate(email, password, { account });
    if (result.ok) return { kind: 'account', account: result.account };
    if (result.reason === 'unknown_account') {
      // A retired address never logs in. Its answer is the one an unknown address or a wrong
      // password gets — same status, page and throttling — so it cannot be used to test
      // addresses. An address is an account's or retired, never both: only an unknown one is
      // looked up here.
      const retired = await deps.linking.findRetired(email);
      if (retired) {
        // Unknown addresses and wrong passwords each cost one Trello (bcrypt) check after
        // argon2: so does this answer, or its time would tell a retired address apart.
        await deps.linking.matchLegacyPassword([], password);
        return { kind: 'retired', accountId: retired.account_id };
      }
      const decision = await deps.trello.tryTrelloPassword(ctx, it, email, password);
      if (decision?.outcome === 'deny') return { kind: 'trello_refused', reason: decision.reason };
      // The member's review: the password proved the member (the subject's counter starts over).
      if (decision) return { kind: 'trello', verdict: 'passed' };
      return { kind: 'wrong', accountId: undefined, reason: result.reason };
    }
    // A Trello password at an account's address: the linked member's (refused by the decision
    // point), or an unlinked member's — then the account is proven next and the member linked
    // to it or, when the account already has its member, the member reviews another address of
    // its own. The attempt stays counted: the account's password was not given.
    const trello = await deps.trello.trelloPasswordOnAccount(ctx, it, result.accountId, email, password);
    if (trello === 'linked') return { kind: 'trello_linked', accountId: result.accountId! };
    if (trello === 'prove' || trello === 'review') return { kind: 'trello', verdict: 'kept' };
    if (trello) return { kind: 'trello_refused', reason: trello.outcome === 'deny' ? trello.reason : 'policy.method_not_allowed' };
    return { kind: 'wrong', accountId: result.accountId, reason: result.reason };
  }

  return {
    name: 'password',
    methods: ['password', 'trello_password'],
    steps: [{
      method: 'post',
      path: '/password',
      async handle(ctx, it) {
        const input = parseForm(ctx, passwordInput);
        const email = normalizeEmail(input.email);
        if (!email) return page(ctx, 400, 'login/identify', { uid: it.uid, clientName: it.clientName, title: 'Log in', email: input.email }, 'login.invalid_email');
        const data = { uid: it.uid, clientName: it.clientName, title: 'Enter your password', email };
        if (!input.password) return page(ctx, 400, 'login/password', data, 'login.password_required');
        // The hashing queue is full (issue 14, "Overload"): 503 + Retry-After now, before any
        // statement or throttle reservation — an attempt that cannot be checked is not counted,
        // and a burst of them costs the database nothing.
        if (deps.hashing.full()) return busy(ctx, data);
        // One statement reads what this step needs and reserves the throttle's attempt (issue 14,
        // decision 0050): the domain's holder, the account, the flow record. On a domain no
        // organization holds, the attempt is counted in it; on a held one, only after the policy
        // has answered.
        const device = deps.devices.known(ctx, email);
        const reservation = throttle.reservation('password', email, ctx.ip, device)!;
        const facts = await deps.step.read(it.uid, email, reservation);
        // An address that must sign in through its company's identity provider (a form posted
        // here directly, or a policy changed since the identifier step) goes there before any
        // password is checked: neither the account's old password nor a Trello one is verified,
        // so this form is no oracle for them (decision 0033). The same answer as the identifier
        // step's, from the same lookup of the domain.
        const sso = deps.policy.decide({ subject: facts.discovered, stage: 'identify', wantedAcr: it.wantedAcr });
        if (sso.outcome === 'use_connector') {
          ctx.state.log?.info({ clientId: it.clientId, connector: sso.connector }, 'password step: sign-in through the company identity provider');
          ctx.status = 303;
          return ctx.redirect(connectorStartPath(it.uid, sso.connector, email));
        }
        const meta = requestMeta(ctx, it.clientId);
        // A browser that signed in with this address before has an allowance of its own.
        let t: Throttled<Checked>;
        try {
          t = await throttled(ctx, throttle, { scope: 'password', subject: email, device, made: facts.made }, () => check(ctx, it, email, input.password, facts.account), (r) => (r.kind === 'trello' ? r.verdict : VERDICT[r.kind]!));
        } catch (err) {
          // The queue filled between the look above and the hash (another request took the last
          // place): the attempt was given back; the same answer as when it was full to begin with.
          if (isBusy(err)) return busy(ctx, data);
          throw err;
        }
        if (t.refused) {
          // Refused before the password is even checked: a guess made now tells nothing.
          await events.record({ type: 'login.failed', accountId: facts.account?.id, reason: 'throttled' }, meta);
          return page(ctx, 429, 'login/password', data, t.error);
        }
        const r = t.result;
        switch (r.kind) {
          case 'account':
            deps.devices.remember(ctx, email);
            return { account: r.account, method: 'password', amr: ['pwd'], flow: facts.flow, flowRead: true, via: 'password', refusal: { view: 'login/password', data } };
          case 'trello_linked':
            // The decision point refuses it by name ("Your Trello password no longer works").
            return { account: { id: r.accountId }, method: 'trello_password', amr: ['pwd'], via: 'password', refusal: { view: 'login/password', data, wait: t.orWait(undefined) } };
          case 'trello':
            ctx.state.log?.info({ clientId: it.clientId }, 'trello password accepted');
            return;
          case 'retired': {
            // Every address of its account is told, by mail and off the response path, which one
            // to use (at most as often as a password reset).
            deps.background.run('retired address notice', async () => {
              if ((await throttle.hit('notice', email, ctx.ip)).ok) await deps.linking.notifyRetiredUse(email, r.accountId, meta);
            });
            ctx.state.log?.info({ clientId: it.clientId }, 'login with a retired address refused');
            return page(ctx, 401, 'login/password', data, t.orWait('login.invalid_credentials'));
          }
          case 'trello_refused':
            ctx.state.log?.info({ clientId: it.clientId, reason: r.reason }, 'trello member refused by policy');
            return page(ctx, 403, 'login/password', data, t.orWait(r.reason));
          case 'wrong':
            await events.record({ type: 'login.failed', accountId: r.accountId, reason: r.reason }, meta);
            ctx.state.log?.info({ code: 'login.invalid_credentials', clientId: it.clientId }, 'login failed');
            return page(ctx, 401, 'login/password', data, t.orWait('login.invalid_credentials'));
        }
      },
    }],
  };
}
