import { randomInt } from 'node:crypto';
import type { Context } from 'koa';
import type { AccountRow, AccountService } from '../../identity/accounts.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { PasswordHasher } from '../../identity/password-hasher.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { kindChanges, linkableEmails, pickableEmails } from '../../legacy-trello/email-choice.ts';
import type { TrelloLinking, TrelloMemberRow } from '../../legacy-trello/linking.ts';
import type { LoginFlow, LoginFlows, TrelloMemberProof } from '../../oidc/login-flows.ts';
import type { Decision, Policy, Subject } from '../../policy/policy.ts';
import { AppError } from '../../shared/errors.ts';
import { constantTimeEqual, hmac } from '../../shared/crypto.ts';
import { waitMessage, type PageError } from '../../http/messages.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { pageRenderer } from '../../http/page.ts';
import { parseForm } from '../../http/validate.ts';
import { throttled, trelloGuessSubject } from '../throttled.ts';
import { unlessBusy } from '../busy.ts';
import type { CompletionHooks } from './completion.ts';
import type { LoginContext } from './interaction.ts';
import { changeEmailInput, codeInput, passwordOnlyInput, reviewInput } from './schema.ts';
import { connectorStartPath, type Factor, type LoginStrategy } from './strategy.ts';

/**
 * The Trello password's strategy: lazy migration of a legacy Trello account at login
 * (docs/flows/trello-migration.md, path 1).
 *
 * The password step hands over here when the password typed is a Trello member's. The decision
 * point is asked about the member as a first factor (`trello_password`): the member of an
 * account is refused by name (its Trello password no longer works once linked), an unlinked one
 * goes on — to its review (the address the account keeps, another verified one, or a new one
 * proven by code; "I can't use the address on my account" is the `email_recovery` stage, refused
 * for a member a Trello Enterprise manages), or, when the address already has an account, to
 * "enter that account's password" (/prove). The account's own password, when an unlinked member
 * has the address verified, is followed by "link your Trello account?" (/offer): an interlude of
 * the completion service. A link to an existing account waits in the flow record and is made as
 * the login finishes, after the account's second step if it has one (decision 0019).
 *
 * State between the pages: the interaction's flow record (src/oidc/login-flows.ts), which holds
 * the member, the argon2id of its Trello password (computed once) and a new address's keyed
 * code hash.
 */
export function trelloMigrationStrategy(deps: {
  accounts: AccountService;
  linking: TrelloLinking;
  hasher: PasswordHasher;
  throttle: Throttle;
  policy: Policy;
  flows: LoginFlows;
  codeKey: Buffer;
  views: Views;
}) {
  const { linking, throttle, flows, policy } = deps;
  const page = pageRenderer(deps.views);

  /** A member not linked to any account is an address without an account here, possibly managed. */
  const memberSubject = (member: TrelloMemberRow, email: string): Subject => ({
    kind: 'address',
    email,
    managers: member.enterprise_id ? [{ kind: 'trello_enterprise', id: member.enterprise_id, name: member.enterprise_name ?? member.enterprise_id }] : [],
  });

  /** The member proven in this interaction, and the flow holding it. */
  async function load(it: LoginContext): Promise<{ flow: LoginFlow; proof: TrelloMemberProof; member: TrelloMemberRow }> {
    const flow = await flows.find(it.uid);
    const proof = flow?.step === 'trello_member' ? flow.trello.member : undefined;
    if (!flow || !proof) throw new AppError('login.second_step_expired', 400);
    const member = await linking.findByMemberId(proof.memberId);
    if (!member) throw new AppError('login.second_step_expired', 400);
    if (member.linked_account_id) throw new AppError('trello.already_linked', 409);
    return { flow, proof, member };
  }

  const saveProof = (it: LoginContext, proof: TrelloMemberProof) => flows.save(it, { step: 'trello_member', trello: { member: proof } });

  /** The addresses whose account /trello/prove may check the password of, in this flow. */
  const proveable = (proof: TrelloMemberProof, member: TrelloMemberRow): string[] => [
    ...(proof.accountEmail ? [proof.accountEmail] : []),
    ...pickableEmails(member.emails).map((e) => normalizeEmail(e.email) ?? ''),
    ...(proof.newEmail && proof.newEmailProven ? [proof.newEmail] : []),
  ].filter(Boolean);

  /**
   * The member's verified addresses a link can still keep: not one of an account that already
   * has a Trello member, nor a retired one (the link would be refused: one member per account).
   */
  async function linkable(member: TrelloMemberRow) {
    const used = await linking.addressesInUse(pickableEmails(member.emails).map((e) => e.email));
    return linkableEmails(member.emails, (email) => used.get(email.toLowerCase()));
  }

  async function reviewPage(ctx: Context, it: LoginContext, member: TrelloMemberRow, status: number, error?: PageError) {
    // Only addresses it can link to are offered, so none that can't be is preselected.
    const choices = await linkable(member);
    const chosen = choices[0];
    // Verified addresses all taken (the person knows the Trello password, so may learn it) or none verified.
    const missing = pickableEmails(member.emails).length ? 'trello.no_free_address' : 'trello.no_verified_address';
    page(ctx, status, 'login/trello-review', {
      title: 'Update your Trello account',
      uid: it.uid,
      clientName: it.clientName,
      username: member.username,
      choices: choices.map((e) => e.email),
      chosen: chosen?.email,
      kindChanges: chosen ? kindChanges(chosen, member.emails) : false,
      others: member.emails.length - 1,
    }, error ?? (chosen ? undefined : missing));
  }

  const provePage = (ctx: Context, it: LoginContext, status: number, email: string, error?: PageError, extra: Record<string, unknown> = {}) =>
    page(ctx, status, 'login/trello-prove', { title: 'This address already has an account', uid: it.uid, clientName: it.clientName, email, ...extra }, error);

  const managedPage = (ctx: Context, it: LoginContext, member: TrelloMemberRow, reason: string) =>
    page(ctx, 403, 'login/trello-managed', { title: 'Your Enterprise manages this account', uid: it.uid, clientName: it.clientName, enterprise: member.enterprise_name ?? member.enterprise_id ?? '' }, reason === 'policy.method_not_allowed' ? undefined : reason);

  /** "I can't use the address on my account": may this member prove a new address (decision point, `email_recovery`)? */
  function emailRecovery(member: TrelloMemberRow): Decision {
    return policy.decide({ subject: memberSubject(member, member.emails[0]?.email ?? ''), stage: 'email_recovery', method: 'email' });
  }

  /** Links the member to a new account (or an existing one proven here), then the login goes on with its password. */
  async function complete(ctx: Context, it: LoginContext, loaded: Awaited<ReturnType<typeof load>>, plan: { email: string; verifiedElsewhere?: boolean }): Promise<Factor | undefined> {
    // An address whose organization requires its identity provider is not given an account by
    // a Trello password: the member migrates through the company's sign-in instead (issue 13).
    const sso = policy.decide({ subject: await policy.discover(plan.email), stage: 'identify', wantedAcr: it.wantedAcr });
    if (sso.outcome === 'use_connector') {
      await flows.end(it.uid);
      ctx.status = 303;
      return void ctx.redirect(connectorStartPath(it.uid, sso.connector, plan.email));
    }
    const result = await linking.link({
      memberId: loaded.member.member_id,
      email: plan.email,
      method: 'password',
      passwordHash: loaded.proof.passwordHash,
      ...(plan.verifiedElsewhere ? { verifiedElsewhere: true } : {}),
    }, requestMeta(ctx, it.clientId));
    if (!result.ok) {
      if (result.problem === 'trello.email_taken') return void provePage(ctx, it, 409, plan.email);
      return void (await reviewPage(ctx, it, loaded.member, result.problem === 'trello.already_linked' ? 409 : 400, result.problem));
    }
    ctx.state.log?.info({ accountId: result.account.id, memberId: loaded.member.member_id, created: result.created }, 'trello account linked at login');
    // The Trello password is now the account's own password (re-hashed with argon2id).
    return { account: result.account, method: 'password', amr: ['pwd'], flow: { ...loaded.flow, trello: {} }, via: 'trello_review' };
  }

  /** The account whose password passed in this interaction, waiting for the Trello answer. */
  async function loadOffer(it: LoginContext): Promise<{ flow: LoginFlow; account: AccountRow }> {
    const flow = await flows.find(it.uid);
    const account = flow?.step === 'trello_offer' && flow.accountId ? await deps.accounts.findById(flow.accountId) : undefined;
    if (!flow || !account) throw new AppError('login.second_step_expired', 400);
    return { flow, account };
  }

  const strategy: LoginStrategy = {
    name: 'trello-password',
    methods: ['trello_password'],
    steps: [
      {
        method: 'get',
        path: '/trello/review',
        async handle(ctx, it) {
          await reviewPage(ctx, it, (await load(it)).member, 200);
        },
      },
      {
        // The Trello password was typed at an address that has an account: prove that account.
        method: 'get',
        path: '/trello/prove',
        async handle(ctx, it) {
          const { proof } = await load(it);
          if (!proof.accountEmail) throw new AppError('login.second_step_expired', 400);
          provePage(ctx, it, 200, proof.accountEmail, undefined, { trelloProven: true });
        },
      },
      {
        method: 'post',
        path: '/trello/review',
        async handle(ctx, it) {
          const loaded = await load(it);
          const input = parseForm(ctx, reviewInput);
          const email = normalizeEmail(input.email);
          // Only a verified address of the member that a link can keep; others are proven by a code.
          if (!email || !(await linkable(loaded.member)).some((e) => e.email === email)) return reviewPage(ctx, it, loaded.member, 400, 'trello.email_not_theirs');
          if (await deps.accounts.findByEmail(email)) return provePage(ctx, it, 409, email);
          return complete(ctx, it, loaded, { email });
        },
      },
      {
        // The address belongs to an account already: its password proves it is the same person,
        // and the Trello account is linked to it as the login finishes (after its second step).
        method: 'post',
        path: '/trello/prove',
        async handle(ctx, it) {
          const { flow, proof, member } = await load(it);
          const input = parseForm(ctx, passwordOnlyInput.extend({ email: changeEmailInput.shape.email }));
          const email = normalizeEmail(input.email) ?? '';
          // Only the address this flow sent here: the account the Trello password was typed at,
          // one of the member's verified addresses (its review), or the new one it proved by
          // code. Any other address would make this form a second password form for any account.
          if (!proveable(proof, member).includes(email)) return reviewPage(ctx, it, member, 400, 'trello.email_not_theirs');
          // An address whose organization requires its identity provider goes there before any
          // password is hashed, as at the password step: its old password is never verified, so a
          // right one and a wrong one get the same answer (decision 0033, 0048).
          const sso = policy.decide({ subject: await policy.discover(email), stage: 'identify', wantedAcr: it.wantedAcr });
          if (sso.outcome === 'use_connector') {
            await flows.end(it.uid);
            ctx.state.log?.info({ clientId: it.clientId, connector: sso.connector }, 'trello prove: sign-in through the company identity provider');
            ctx.status = 303;
            return ctx.redirect(connectorStartPath(it.uid, sso.connector, email));
          }
          // A full password hashing answers this form again, 503 with Retry-After (decision 0063).
          const t = await unlessBusy(ctx, () => throttled(ctx, throttle, { scope: 'password', subject: email }, () => deps.accounts.authenticate(email, input.password), (r) => (r.ok ? 'passed' : 'failed')));
          if ('problem' in t) return provePage(ctx, it, 503, email, t.problem);
          if (t.refused) return provePage(ctx, it, 429, email, t.error);
          if (!t.result.ok) return provePage(ctx, it, 401, email, t.orWait('login.invalid_credentials'));
          const account = t.result.account;
          if (await linking.findByAccountId(account.id)) return provePage(ctx, it, 409, email, 'trello.account_has_member');
          // A link is for good: an account with a second factor is linked only once that is passed too.
          const waiting: LoginFlow = { ...flow, trello: { link: { memberId: member.member_id, accountId: account.id, email: account.email } } };
          return { account, method: 'password', amr: ['pwd'], flow: waiting, via: 'trello_prove', refusal: { view: 'login/trello-prove', data: { title: 'This address already has an account', email } } };
        },
      },
      {
        method: 'get',
        path: '/trello/offer',
        async handle(ctx, it) {
          const { account } = await loadOffer(it);
          page(ctx, 200, 'login/trello-offer', { title: 'Link your Trello account', uid: it.uid, clientName: it.clientName, email: account.email });
        },
      },
      {
        method: 'post',
        path: '/trello/offer',
        async handle(ctx, it) {
          const { flow, account } = await loadOffer(it);
          const input = parseForm(ctx, passwordOnlyInput);
          const data = { title: 'Link your Trello account', uid: it.uid, clientName: it.clientName, email: account.email };
          // Throttled like the Trello password in Settings → Trello, under the same subject (the
          // account, decision 0076; a right one leaves the count as it is). The step's first hash:
          // a full hashing answers this form again (decision 0063).
          const t = await unlessBusy(ctx, () => throttled(ctx, throttle, { scope: 'password', subject: trelloGuessSubject(account.id) },
            async () => linking.matchLegacyPassword(await linking.candidatesFor(account.email, { verifiedOnly: true }), input.password, { first: true }), (m) => (m ? 'kept' : 'failed')));
          if ('problem' in t) return page(ctx, 503, 'login/trello-offer', data, t.problem);
          if (t.refused) return page(ctx, 429, 'login/trello-offer', data, t.error);
          if (!t.result) return page(ctx, 401, 'login/trello-offer', data, t.orWait('trello.credentials'));
          const link = { memberId: t.result.member_id, accountId: account.id, email: account.email };
          return { account, method: 'password', amr: flow.amr, flow: { ...flow, trello: { link, offerAnswered: true } }, via: 'trello_offer' };
        },
      },
      {
        method: 'post',
        path: '/trello/offer/skip',
        async handle(_ctx, it) {
          const { flow, account } = await loadOffer(it);
          return { account, method: 'password', amr: flow.amr, flow: { ...flow, trello: { offerAnswered: true } }, via: 'trello_offer' };
        },
      },
      {
        method: 'get',
        path: '/trello/change-email',
        async handle(ctx, it) {
          const { member } = await load(it);
          const decision = emailRecovery(member);
          if (decision.outcome === 'deny') return managedPage(ctx, it, member, decision.reason);
          page(ctx, 200, 'login/trello-change-email', { title: 'Use another address', uid: it.uid, clientName: it.clientName, email: '' });
        },
      },
      {
        method: 'post',
        path: '/trello/change-email',
        async handle(ctx, it) {
          const { proof, member } = await load(it);
          const decision = emailRecovery(member);
          if (decision.outcome === 'deny') return managedPage(ctx, it, member, decision.reason);
          const input = parseForm(ctx, changeEmailInput);
          const email = normalizeEmail(input.email);
          const data = { title: 'Use another address', uid: it.uid, clientName: it.clientName, email: input.email };
          if (!email) return page(ctx, 400, 'login/trello-change-email', data, 'login.invalid_email');
          const gate = await throttle.hit('signup', email, ctx.ip);
          if (!gate.ok) return page(ctx, 429, 'login/trello-change-email', data, waitMessage(ctx, gate.retryAfterSeconds));
          const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
          await saveProof(it, { ...proof, newEmail: email, codeHash: hmac(deps.codeKey, `trello-address:${it.uid}:${email}:${code}`) });
          await linking.sendAddressCode(email, code, member.username);
          // "Check your email" is a GET of its own: a reload shows it again rather than mailing a
          // second code that voids the first.
          ctx.status = 303;
          ctx.redirect(`/interaction/${it.uid}/trello/change-email/code`);
        },
      },
      {
        method: 'get',
        path: '/trello/change-email/code',
        async handle(ctx, it) {
          const { proof } = await load(it);
          if (!proof.newEmail || !proof.codeHash) {
            ctx.status = 303;
            return ctx.redirect(`/interaction/${it.uid}/trello/change-email`);
          }
          page(ctx, 200, 'login/trello-code', { title: 'Check your email', uid: it.uid, clientName: it.clientName, email: proof.newEmail });
        },
      },
      {
        method: 'post',
        path: '/trello/change-email/code',
        async handle(ctx, it) {
          const loaded = await load(it);
          const { proof, member } = loaded;
          const email = proof.newEmail;
          if (!email || !proof.codeHash) throw new AppError('login.second_step_expired', 400);
          const input = parseForm(ctx, codeInput);
          const data = { title: 'Check your email', uid: it.uid, clientName: it.clientName, email };
          const typed = input.code.replace(/\s/g, '');
          const t = await throttled(ctx, throttle, { scope: 'email-code', subject: `trello:${member.member_id}` },
            async () => constantTimeEqual(hmac(deps.codeKey, `trello-address:${it.uid}:${email}:${typed}`), proof.codeHash!), (ok) => (ok ? 'kept' : 'failed'));
          if (t.refused) return page(ctx, 429, 'login/trello-code', data, t.error);
          if (!t.result) {
            await flows.failed(it.uid);
            return page(ctx, 400, 'login/trello-code', data, t.orWait('signup.code_invalid'));
          }
          if (await deps.accounts.findByEmail(email)) {
            // The code proved the address: its account may be proven next (/trello/prove).
            await saveProof(it, { ...proof, newEmailProven: true });
            return provePage(ctx, it, 409, email);
          }
          return complete(ctx, it, loaded, { email, verifiedElsewhere: true });
        },
      },
    ],
  };

  /**
   * Saves the member proven by its Trello password and sends the browser to its next page. The
   * proof's hash is the step's second hash: it waits its turn but is never refused (`rehash`), so
   * a member who just proved the password is never told "busy" after the check (decision 0056).
   */
  async function proceed(ctx: Context, it: LoginContext, member: TrelloMemberRow, password: string, next: 'review' | 'prove', accountEmail?: string) {
    await saveProof(it, { memberId: member.member_id, passwordHash: await deps.hasher.rehash(password), ...(accountEmail ? { accountEmail } : {}) });
    ctx.status = 303;
    ctx.redirect(`/interaction/${it.uid}/trello/${next}`);
  }

  const hooks: CompletionHooks = {
    /**
     * After the account's own password: when an unlinked member has the account's address
     * (verified) and the account has no member yet, offer to link it before going on. One
     * indexed read on every successful password login.
     */
    async interlude(ctx, it, { account, factor, flow }) {
      if (factor.via !== 'password' || flow?.trello.offerAnswered) return false;
      // The login lookup already said (`findForLogin`); other strategies' rows did not.
      if (!(account.trello_linkable ?? (await linking.linkableByAccount(account.id, account.email)))) return false;
      await flows.save(it, { step: 'trello_offer', accountId: account.id, amr: factor.amr });
      ctx.status = 303;
      ctx.redirect(`/interaction/${it.uid}/trello/offer`);
      return true;
    },

    /**
     * As the login finishes: the link proven earlier in this interaction is made now, to the
     * account that finished it. A link refused now (linked meanwhile) does not stop the login.
     */
    async beforeFinish(ctx, it, { accountId, flow }) {
      const deferred = flow?.trello.link;
      if (!deferred || deferred.accountId !== accountId) return;
      const result = await linking.link({ memberId: deferred.memberId, email: deferred.email, method: 'password', existingAccountId: deferred.accountId }, requestMeta(ctx, it.clientId));
      if (result.ok) ctx.state.log?.info({ accountId, memberId: deferred.memberId }, 'trello account linked at login');
      else ctx.state.log?.warn({ accountId, memberId: deferred.memberId, problem: result.problem }, 'trello link at login refused');
    },
  };

  return {
    strategy,
    hooks,

    /**
     * At the password step, for an address without an account: if an unlinked Trello member has
     * it and the password is that member's Trello password, the decision point is asked about
     * the member, then its review starts. An address without a member costs the same bcrypt
     * check, so the time does not tell. Several members may have the address: the one whose
     * password matches is the one, and every candidate costs its check (decision 0019).
     */
    async tryTrelloPassword(ctx: Context, it: LoginContext, email: string, password: string): Promise<Decision | undefined> {
      const member = await linking.matchLegacyPassword(await linking.candidatesFor(email), password);
      if (!member) return undefined;
      const decision = policy.decide({ subject: memberSubject(member, email), stage: 'first_factor', method: 'trello_password', wantedAcr: it.wantedAcr });
      if (decision.outcome !== 'deny') await proceed(ctx, it, member, password, 'review');
      return decision;
    },

    /**
     * For a wrong password on an existing account: was it a Trello password? That of the member
     * linked to the account — `linked`: the factor goes to the decision point, which refuses it
     * by name —, that of an unlinked member with the account's address while the account has no
     * member — `prove`: the account is proven next, and the member linked to it —, or, when the
     * account already has its member (one per account), that of an unlinked member with the
     * address — `review`: the member's own review. Every hash (the linked member's and the
     * candidates', or a decoy without any) is checked whichever matches, so the time of a
     * failure does not tell whether the account exists, nor which branch was taken.
     */
    async trelloPasswordOnAccount(ctx: Context, it: LoginContext, accountId: string | undefined, email: string, password: string): Promise<'linked' | 'prove' | 'review' | Decision | undefined> {
      const linked = accountId ? await linking.findByAccountId(accountId) : undefined;
      // The linked member first: its old password is recognised as such even if an unlinked
      // member of the same person has the same one.
      const member = await linking.matchLegacyPassword([...(linked ? [linked] : []), ...(await linking.candidatesFor(email))], password);
      if (!member) return undefined;
      if (member.linked_account_id) return 'linked';
      const decision = policy.decide({ subject: memberSubject(member, email), stage: 'first_factor', method: 'trello_password', wantedAcr: it.wantedAcr });
      if (decision.outcome === 'deny') return decision;
      await proceed(ctx, it, member, password, linked ? 'review' : 'prove', linked ? undefined : email);
      return linked ? 'review' : 'prove';
    },
  };
}

export type TrelloMigration = ReturnType<typeof trelloMigrationStrategy>;
