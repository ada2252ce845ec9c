import { randomInt } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { PasswordHasher } from '../../identity/password-hasher.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { kindChanges, pickableEmails, chooseEmail } from '../../identity/trello/email-choice.ts';
import type { TrelloLinking } from '../../identity/trello/linking.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { TrelloMemberRow } from '../../persistence/queries/trello.ts';
import { AppError } from '../../shared/errors.ts';
import { constantTimeEqual, hmac, type SecretBox } from '../../shared/crypto.ts';
import { waitMessage, type PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { changeEmailInput, codeInput, passwordOnlyInput, reviewInput } from './schema.ts';
import type { SecondStep } from './second-step.ts';

/**
 * Lazy migration of a legacy Trello account at login (docs/flows/trello-migration.md, path 1).
 *
 * The password step hands over here when the address typed has no account but belongs to an
 * unlinked Trello member whose Trello password was right. The person reviews the address the
 * account keeps (and may pick another verified one, or prove a new one), then the account is
 * created with the same password re-hashed with argon2id, linked, and the authorization goes on.
 *
 * State between the pages: a cookie sealed with SECRET_KEY (AES-GCM, so the argon2 hash of the
 * password it carries is neither readable nor forgeable), scoped to this interaction, 15 minutes.
 */
const COOKIE = 'lanyard.trello_pending';
const TTL_SECONDS = 900;

interface Pending {
  memberId: string;
  /** argon2id of the Trello password, computed once at the password step. */
  passwordHash: string;
  /** A new address being proven ("I can't use these addresses"), with its code's keyed hash. */
  newEmail?: string;
  codeHash?: string;
}

export function trelloMigrationRoutes(deps: {
  interactions: Interactions;
  accounts: AccountService;
  linking: TrelloLinking;
  hasher: PasswordHasher;
  throttle: Throttle;
  secondStep: SecondStep;
  box: SecretBox;
  codeKey: Buffer;
  views: Views;
  now: () => number;
}) {
  const { interactions, linking, throttle, views, box } = deps;
  const router = new Router({ prefix: '/interaction/:uid/trello' });
  const context = (uid: string) => `trello_pending:${uid}`;

  const page = pageRenderer(views);

  const pendingCookie = sealedCookie<Pending>(box, deps.now, { name: COOKIE, ttlSeconds: TTL_SECONDS });
  const save = (ctx: Context, uid: string, pending: Pending) => pendingCookie.set(ctx, `/interaction/${uid}`, context(uid), pending);

  async function load(ctx: Context): Promise<{ uid: string; clientId: string; clientName: string; pending: Pending; member: TrelloMemberRow }> {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
    const pending = pendingCookie.get(ctx, context(view.uid));
    if (!pending) throw new AppError('login.second_step_expired', 400);
    const member = await linking.findByMemberId(pending.memberId);
    if (!member) throw new AppError('login.second_step_expired', 400);
    if (member.linked_account_id) throw new AppError('trello.already_linked', 409);
    const client = await interactions.client(view.clientId);
    return { uid: view.uid, clientId: view.clientId, clientName: client?.name ?? view.clientId, pending, member };
  }

  function reviewPage(ctx: Context, it: Awaited<ReturnType<typeof load>>, status: number, error?: PageError) {
    const choices = pickableEmails(it.member.emails);
    const chosen = choices[0] ?? chooseEmail(it.member.emails)!;
    page(ctx, status, 'login/trello-review', {
      title: 'Update your Trello account',
      uid: it.uid,
      clientName: it.clientName,
      username: it.member.username,
      choices: choices.map((e) => e.email),
      chosen: chosen.email,
      kindChanges: kindChanges(chosen, it.member.emails),
      others: it.member.emails.length - 1,
    }, error ?? (choices.length ? undefined : 'trello.no_verified_address'));
  }

  async function complete(ctx: Context, it: Awaited<ReturnType<typeof load>>, plan: { email: string; existing?: AccountRow; verifiedElsewhere?: boolean }) {
    const result = await linking.link({
      memberId: it.member.member_id,
      email: plan.email,
      method: 'password',
      passwordHash: plan.existing ? null : it.pending.passwordHash,
      ...(plan.existing ? { existingAccountId: plan.existing.id } : {}),
      ...(plan.verifiedElsewhere ? { verifiedElsewhere: true } : {}),
    }, requestMeta(ctx, it.clientId));
    if (!result.ok) {
      if (result.problem === 'trello.email_taken') return page(ctx, 409, 'login/trello-prove', { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email: plan.email });
      return reviewPage(ctx, it, result.problem === 'trello.already_linked' ? 409 : 400, result.problem);
    }
    pendingCookie.clear(ctx, `/interaction/${it.uid}`);
    ctx.state.log?.info({ accountId: result.account.id, memberId: it.member.member_id, created: result.created }, 'trello account linked at login');
    await deps.secondStep.afterFirstFactor(ctx, { uid: it.uid, clientId: it.clientId, clientName: it.clientName }, result.account, ['pwd']);
  }

  router.get('/review', async (ctx) => reviewPage(ctx, await load(ctx), 200));

  router.post('/review', async (ctx) => {
    const it = await load(ctx);
    const input = parseForm(ctx, reviewInput);
    const email = normalizeEmail(input.email);
    // Only a verified address of the member can be picked here; others are proven by a code.
    if (!email || !pickableEmails(it.member.emails).some((e) => e.email === email)) return reviewPage(ctx, it, 400, 'trello.email_not_theirs');
    const owner = await deps.accounts.findByEmail(email);
    if (owner) return page(ctx, 409, 'login/trello-prove', { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email });
    await complete(ctx, it, { email });
  });

  // The address belongs to an account already: its password proves it is the same person, and
  // the Trello account is linked to that account. Never two accounts for one person silently.
  router.post('/prove', async (ctx) => {
    const it = await load(ctx);
    const input = parseForm(ctx, passwordOnlyInput.extend({ email: changeEmailInput.shape.email }));
    const email = normalizeEmail(input.email) ?? '';
    const data = { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email };
    const gate = await throttle.attempt('password', email, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'login/trello-prove', data, waitMessage(ctx, gate.retryAfterSeconds));
    const auth = await deps.accounts.authenticate(email, input.password);
    if (!auth.ok) {
      const wait = await throttle.failed('password', ctx.ip, gate);
      return page(ctx, 401, 'login/trello-prove', data, wait > 0 ? waitMessage(ctx, wait) : 'login.invalid_credentials');
    }
    await throttle.succeeded('password', email);
    // A link is for good: an account with a second factor must be proven with it too, which
    // this page does not ask for. Settings → Trello does it after a full login.
    if (auth.account.two_step_enabled) return page(ctx, 403, 'login/trello-prove', data, 'trello.two_step_first');
    await complete(ctx, it, { email: auth.account.email, existing: auth.account });
  });

  // "I can't use any of these addresses": a new one, proven by a code, unless a Trello
  // Enterprise manages the account — then its admin must go through support, and nothing changes.
  router.get('/change-email', async (ctx) => {
    const it = await load(ctx);
    if (it.member.enterprise_id) return page(ctx, 403, 'login/trello-managed', { title: 'Your Enterprise manages this account', uid: it.uid, clientName: it.clientName, enterprise: it.member.enterprise_name ?? it.member.enterprise_id });
    page(ctx, 200, 'login/trello-change-email', { title: 'Use another address', uid: it.uid, clientName: it.clientName, email: '' });
  });

  router.post('/change-email', async (ctx) => {
    const it = await load(ctx);
    if (it.member.enterprise_id) return page(ctx, 403, 'login/trello-managed', { title: 'Your Enterprise manages this account', uid: it.uid, clientName: it.clientName, enterprise: it.member.enterprise_name ?? it.member.enterprise_id });
    const input = parseForm(ctx, changeEmailInput);
    const email = normalizeEmail(input.email);
    const data = { title: 'Use another address', uid: it.uid, clientName: it.clientName, email: input.email };
    if (!email) return page(ctx, 400, 'login/trello-change-email', data, 'login.invalid_email');
    const gate = await throttle.hit('signup', email, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'login/trello-change-email', data, waitMessage(ctx, gate.retryAfterSeconds));
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    save(ctx, it.uid, { ...it.pending, newEmail: email, codeHash: hmac(deps.codeKey, `trello-address:${it.uid}:${email}:${code}`) });
    await linking.sendAddressCode(email, code, it.member.username);
    page(ctx, 200, 'login/trello-code', { title: 'Check your email', uid: it.uid, clientName: it.clientName, email });
  });

  router.post('/change-email/code', async (ctx) => {
    const it = await load(ctx);
    const email = it.pending.newEmail;
    if (!email || !it.pending.codeHash) throw new AppError('login.second_step_expired', 400);
    const input = parseForm(ctx, codeInput);
    const data = { title: 'Check your email', uid: it.uid, clientName: it.clientName, email };
    const gate = await throttle.attempt('email-code', `trello:${it.member.member_id}`, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'login/trello-code', data, waitMessage(ctx, gate.retryAfterSeconds));
    const typed = input.code.replace(/\s/g, '');
    if (!constantTimeEqual(hmac(deps.codeKey, `trello-address:${it.uid}:${email}:${typed}`), it.pending.codeHash)) {
      const wait = await throttle.failed('email-code', ctx.ip, gate);
      return page(ctx, 400, 'login/trello-code', data, wait > 0 ? waitMessage(ctx, wait) : 'signup.code_invalid');
    }
    const owner = await deps.accounts.findByEmail(email);
    if (owner) return page(ctx, 409, 'login/trello-prove', { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email });
    await complete(ctx, it, { email, verifiedElsewhere: true });
  });

  return {
    router,

    /**
     * At the password step, for an address without an account: if an unlinked Trello member has
     * it and the password is that member's Trello password, start the review. An address
     * without a member costs the same bcrypt check, so the time does not tell.
     */
    async tryTrelloPassword(ctx: Context, uid: string, email: string, password: string): Promise<boolean> {
      const member = (await linking.findByEmail(email)).find((m) => !m.linked_account_id);
      if (!(await linking.checkLegacyPassword(member, password)) || !member) return false;
      save(ctx, uid, { memberId: member.member_id, passwordHash: await deps.hasher.hash(password) });
      ctx.status = 303;
      ctx.redirect(`/interaction/${uid}/trello/review`);
      return true;
    },

    /**
     * For a wrong password on an existing account: was it the old Trello password of the member
     * linked to it? Always one bcrypt check (a decoy without a member), like an unknown address
     * costs, so the time of a failure does not tell whether the account exists.
     */
    async isRetiredTrelloPassword(accountId: string | undefined, password: string): Promise<boolean> {
      const member = accountId ? await linking.findByAccountId(accountId) : undefined;
      return linking.checkLegacyPassword(member, password);
    },
  };
}

export type TrelloMigration = ReturnType<typeof trelloMigrationRoutes>;
