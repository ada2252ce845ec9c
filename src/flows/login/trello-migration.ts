import { randomInt } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { PasswordHasher } from '../../identity/password-hasher.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { kindChanges, linkableEmails, pickableEmails } from '../../legacy-trello/email-choice.ts';
import type { TrelloLinking, TrelloMemberRow } from '../../legacy-trello/linking.ts';
import type { Interactions } from '../../oidc/interactions.ts';
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
 * When the address already has an account, the person proves both sides — the account's
 * password and the Trello password, in either order — and the link to that account is made
 * when the login finishes, after the account's second step if it has one (decision 0019):
 *
 * - the Trello password typed at an account's address → "enter that account's password" (/prove);
 * - the account's own password typed, and an unlinked member has the address verified → "link
 *   your Trello account?" asks the Trello password (/offer), or goes on without (/offer/skip).
 *
 * State between the pages: cookies sealed with SECRET_KEY (AES-GCM, so the argon2 hash of the
 * password they carry is neither readable nor forgeable), scoped to this interaction, 15 minutes.
 */
const COOKIE = 'lanyard.trello_pending';
const TTL_SECONDS = 900;

interface Pending {
  memberId: string;
  /** argon2id of the Trello password, computed once at the password step. */
  passwordHash: string;
  /** The account the Trello password was typed at (its address), when it has one. */
  accountEmail?: string;
  /** A new address being proven ("I can't use these addresses"), with its code's keyed hash. */
  newEmail?: string;
  codeHash?: string;
}

/** Both sides proven: linked when this login finishes (after the second step, if any). */
interface DeferredLink { memberId: string; accountId: string; email: string }
/** The account's password passed; the Trello password may still be given to link. */
interface Offer { accountId: string; amr: string[]; reopen: boolean }

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
  const linkCookie = sealedCookie<DeferredLink>(box, deps.now, { name: 'lanyard.trello_link', ttlSeconds: TTL_SECONDS });
  const offerCookie = sealedCookie<Offer>(box, deps.now, { name: 'lanyard.trello_offer', ttlSeconds: TTL_SECONDS });

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

  /**
   * The member's verified addresses a link can still keep: not one of an account that already
   * has a Trello member, nor a retired one (the link would be refused: one member per account).
   */
  async function linkable(member: TrelloMemberRow) {
    const used = await linking.addressesInUse(pickableEmails(member.emails).map((e) => e.email));
    return linkableEmails(member.emails, (email) => used.get(email.toLowerCase()));
  }

  async function reviewPage(ctx: Context, it: Awaited<ReturnType<typeof load>>, status: number, error?: PageError) {
    // Only addresses it can link to are offered, so none that can't be is preselected.
    const choices = await linkable(it.member);
    const chosen = choices[0];
    // Verified addresses all taken (the person knows the Trello password, so may learn it) or none verified.
    const missing = pickableEmails(it.member.emails).length ? 'trello.no_free_address' : 'trello.no_verified_address';
    page(ctx, status, 'login/trello-review', {
      title: 'Update your Trello account',
      uid: it.uid,
      clientName: it.clientName,
      username: it.member.username,
      choices: choices.map((e) => e.email),
      chosen: chosen?.email,
      kindChanges: chosen ? kindChanges(chosen, it.member.emails) : false,
      others: it.member.emails.length - 1,
    }, error ?? (chosen ? undefined : missing));
  }

  /**
   * Links to an existing account whose password was just proven: not now, but when the login
   * finishes, so an account with two-step verification is linked only after its code.
   */
  async function linkOnFinish(ctx: Context, it: { uid: string; clientId: string; clientName: string }, memberId: string, account: AccountRow, amr: string[], reopen: boolean) {
    pendingCookie.clear(ctx, `/interaction/${it.uid}`);
    const deferred: DeferredLink = { memberId, accountId: account.id, email: account.email };
    linkCookie.set(ctx, `/interaction/${it.uid}`, `trello_link:${it.uid}`, deferred);
    // Without a second step the login finishes in this very request, before the browser has the cookie.
    ctx.state.trelloLink = deferred;
    await deps.secondStep.afterFirstFactor(ctx, it, account, amr, { reopen });
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
      return await reviewPage(ctx, it, result.problem === 'trello.already_linked' ? 409 : 400, result.problem);
    }
    pendingCookie.clear(ctx, `/interaction/${it.uid}`);
    ctx.state.log?.info({ accountId: result.account.id, memberId: it.member.member_id, created: result.created }, 'trello account linked at login');
    await deps.secondStep.afterFirstFactor(ctx, { uid: it.uid, clientId: it.clientId, clientName: it.clientName }, result.account, ['pwd']);
  }

  router.get('/review', async (ctx) => reviewPage(ctx, await load(ctx), 200));

  // The Trello password was typed at an address that has an account: prove that account.
  router.get('/prove', async (ctx) => {
    const it = await load(ctx);
    if (!it.pending.accountEmail) throw new AppError('login.second_step_expired', 400);
    page(ctx, 200, 'login/trello-prove', { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email: it.pending.accountEmail, trelloProven: true });
  });

  router.post('/review', async (ctx) => {
    const it = await load(ctx);
    const input = parseForm(ctx, reviewInput);
    const email = normalizeEmail(input.email);
    // Only a verified address of the member that a link can keep; others are proven by a code.
    if (!email || !(await linkable(it.member)).some((e) => e.email === email)) return reviewPage(ctx, it, 400, 'trello.email_not_theirs');
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
    if (await linking.findByAccountId(auth.account.id)) return page(ctx, 409, 'login/trello-prove', data, 'trello.account_has_member');
    // A link is for good: an account with a second factor is linked only once that is passed too.
    await linkOnFinish(ctx, it, it.member.member_id, auth.account, ['pwd'], Boolean(auth.reopen));
  });

  /** The account whose password passed in this interaction, waiting for the Trello answer. */
  async function loadOffer(ctx: Context) {
    const view = await interactions.view(ctx);
    if (view.prompt !== 'login') throw new AppError('interaction.expired', 400);
    const offer = offerCookie.get(ctx, `trello_offer:${view.uid}`);
    const account = offer ? await deps.accounts.findById(offer.accountId) : undefined;
    if (!offer || !account || !(account.status === 'active' || (offer.reopen && account.status === 'closed'))) throw new AppError('login.second_step_expired', 400);
    const client = await interactions.client(view.clientId);
    return { uid: view.uid, clientId: view.clientId, clientName: client?.name ?? view.clientId, offer, account };
  }

  router.post('/offer', async (ctx) => {
    const it = await loadOffer(ctx);
    const input = parseForm(ctx, passwordOnlyInput);
    const data = { title: 'Link your Trello account', uid: it.uid, clientName: it.clientName, email: it.account.email };
    // Throttled like the Trello password in Settings → Trello, under the same subject.
    const subject = `trello:${it.account.email.toLowerCase()}`;
    const gate = await throttle.attempt('password', subject, ctx.ip);
    if (!gate.ok) return page(ctx, 429, 'login/trello-offer', data, waitMessage(ctx, gate.retryAfterSeconds));
    const member = await linking.matchLegacyPassword(await linking.candidatesFor(it.account.email, { verifiedOnly: true }), input.password);
    if (!member) {
      const wait = await throttle.failed('password', ctx.ip, gate);
      return page(ctx, 401, 'login/trello-offer', data, wait > 0 ? waitMessage(ctx, wait) : 'trello.credentials');
    }
    await throttle.succeeded('password', subject);
    offerCookie.clear(ctx, `/interaction/${it.uid}`);
    await linkOnFinish(ctx, it, member.member_id, it.account, it.offer.amr, it.offer.reopen);
  });

  router.post('/offer/skip', async (ctx) => {
    const it = await loadOffer(ctx);
    offerCookie.clear(ctx, `/interaction/${it.uid}`);
    await deps.secondStep.afterFirstFactor(ctx, it, it.account, it.offer.amr, { reopen: it.offer.reopen });
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
      // Several members may have the address: the one whose password matches is the one, and
      // every candidate costs its check whichever it is (decision 0019).
      const member = await linking.matchLegacyPassword(await linking.candidatesFor(email), password);
      if (!member) return false;
      save(ctx, uid, { memberId: member.member_id, passwordHash: await deps.hasher.hash(password) });
      ctx.status = 303;
      ctx.redirect(`/interaction/${uid}/trello/review`);
      return true;
    },

    /**
     * For a wrong password on an existing account: was it a Trello password? That of the member
     * linked to the account — `retired`: it no longer works —, that of an unlinked member with
     * the account's address while the account has no member — `link_offered`: the person is
     * sent to prove the account, and the member is linked to it —, or, when the account already
     * has its member (one per account), that of an unlinked member with the address —
     * `review`: the member's own review, where that address is not offered and another one is
     * picked or proven by a code. Every hash (the linked member's and the candidates', or a
     * decoy without any) is checked whichever matches, so the time of a failure does not tell
     * whether the account exists, nor which branch was taken.
     */
    async trelloPasswordOnAccount(ctx: Context, uid: string, accountId: string | undefined, email: string, password: string): Promise<'retired' | 'link_offered' | 'review' | undefined> {
      const linked = accountId ? await linking.findByAccountId(accountId) : undefined;
      // The linked member first: its old password is recognised as such even if an unlinked
      // member of the same person has the same one.
      const member = await linking.matchLegacyPassword([...(linked ? [linked] : []), ...(await linking.candidatesFor(email))], password);
      if (!member) return undefined;
      if (member.linked_account_id) return 'retired';
      save(ctx, uid, { memberId: member.member_id, passwordHash: await deps.hasher.hash(password), ...(linked ? {} : { accountEmail: email }) });
      ctx.status = 303;
      ctx.redirect(`/interaction/${uid}/trello/${linked ? 'review' : 'prove'}`);
      return linked ? 'review' : 'link_offered';
    },

    /**
     * After the account's own password: when an unlinked member has the account's address
     * (verified) and the account has no member yet, offer to link it before going on. One
     * indexed read on every successful password login.
     */
    async offerLink(ctx: Context, it: { uid: string; clientName: string }, account: AccountRow, amr: string[], reopen: boolean): Promise<boolean> {
      if (!(await linking.linkableByAccount(account.id, account.email))) return false;
      offerCookie.set(ctx, `/interaction/${it.uid}`, `trello_offer:${it.uid}`, { accountId: account.id, amr, reopen });
      page(ctx, 200, 'login/trello-offer', { title: 'Link your Trello account', uid: it.uid, clientName: it.clientName, email: account.email });
      return true;
    },

    /**
     * Called by the second step as the login finishes: the link proven earlier in this
     * interaction is made now, to the account that finished it. A link refused now (linked
     * meanwhile) does not stop the login.
     */
    async linkOnFinish(ctx: Context, it: { uid: string; clientId: string; accountId: string }): Promise<void> {
      const deferred = (ctx.state.trelloLink as DeferredLink | undefined) ?? linkCookie.get(ctx, `trello_link:${it.uid}`);
      if (!deferred) return;
      linkCookie.clear(ctx, `/interaction/${it.uid}`);
      if (deferred.accountId !== it.accountId) return;
      const result = await linking.link({ memberId: deferred.memberId, email: deferred.email, method: 'password', existingAccountId: deferred.accountId }, requestMeta(ctx, it.clientId));
      if (result.ok) ctx.state.log?.info({ accountId: it.accountId, memberId: deferred.memberId }, 'trello account linked at login');
      else ctx.state.log?.warn({ accountId: it.accountId, memberId: deferred.memberId, problem: result.problem }, 'trello link at login refused');
    },
  };
}

export type TrelloMigration = ReturnType<typeof trelloMigrationRoutes>;
