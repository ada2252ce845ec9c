import { randomInt } from 'node:crypto';
import type { Database } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import type { SignupFlowQueries, SignupFlowRow } from '../persistence/queries/signup-flows.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { constantTimeEqual, hmac } from '../shared/crypto.ts';
import { newId, randomSecret } from '../shared/ids.ts';
import { displayText } from '../shared/display-text.ts';
import { normalizeEmail } from './email-address.ts';
import type { PasswordHasher } from './password-hasher.ts';
import type { PasswordPolicy, PasswordProblem } from './password-policy.ts';
import { passwordMinLength, type Policy } from '../policy/policy.ts';

export type CodeCheck = 'verified' | 'invalid' | 'locked' | 'expired';
/** The longest name (the form's limit, as in the profile). */
const MAX_NAME = 200;

export type CompleteResult =
  | { ok: true; account: AccountRow }
  | { ok: false; problem: PasswordProblem | 'signup.expired' | 'signup.email_taken' | 'signup.name_required' | 'signup.name_invalid' | 'policy.method_not_allowed' };

/** Wrong codes allowed per flow before it must be started again. */
export const MAX_CODE_ATTEMPTS = 5;

/**
 * Sign-up with a verified address (docs/flows/sign-up.md): address → email with a 6-digit code
 * and a link (either works once, for `ttlSeconds`) → name and password → account. An address that
 * already has an account gets an email saying so instead; the pages do not differ.
 *
 * Codes and link tokens are stored as HMACs under a server key, so a copy of the table does not
 * let anyone verify an address, and a code is bound to its flow.
 */
export function createRegistrationService(deps: {
  db: Database;
  accounts: AccountQueries;
  flows: SignupFlowQueries;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  outbox: Outbox;
  clock: Clock;
  issuer: string;
  codeKey: Buffer;
  ttlSeconds: number;
  /** The decision point (`sign_up`): may an account be created at this address? */
  decisions: Pick<Policy, 'decide' | 'subjectForEmail' | 'addressSubject'>;
}) {
  const { db, accounts, flows, hasher, policy, outbox, clock, issuer, codeKey } = deps;
  const now = () => new Date(clock.now());
  const codeHash = (flowId: string, code: string) => hmac(codeKey, `code:${flowId}:${code}`);
  const linkHash = (token: string) => hmac(codeKey, `link:${token}`);

  return {
    /** Emails a code and link for a new address, or an "already registered" notice for a known one. */
    async start(interactionUid: string, emailInput: string): Promise<void> {
      const email = normalizeEmail(emailInput);
      if (!email) return;
      // The decision point answers for the address: an account there refuses (its owner gets the
      // "already registered" notice), a bare address allows — or, once a company's domain signs
      // in through its own identity provider, sends the person there (nothing is mailed: the
      // login page's identifier step will say so). A retired address is reserved for its
      // account: it gets the same notice as a registered one.
      const { account, subject } = await deps.decisions.subjectForEmail(email);
      const decision = deps.decisions.decide({ subject, stage: 'sign_up', method: 'email' });
      const existing = account ?? ((await accounts.isRetired(email)) ? { email } : undefined);
      if (!existing && decision.outcome !== 'allow') return;
      await db.transaction(async (tx) => {
        const id = newId('signup');
        const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
        const token = randomSecret(32);
        // A taken address gets a flow like any other, so the code page answers as for any address
        // (wrong codes count and lock alike); its code and link are never sent, and its code hash
        // is of no six digits, so nothing verifies it. Without it, the first wrong code said
        // "expired" here and "not right" elsewhere, telling anyone which addresses have an account.
        await flows.replace(tx, {
          id,
          interactionUid,
          email,
          codeHash: codeHash(id, existing ? 'never sent' : code),
          linkHash: linkHash(token),
          now: now(),
          expiresAt: new Date(clock.now() + deps.ttlSeconds * 1000),
        });
        await outbox.enqueue(tx, existing
          ? { to: existing.email, template: 'already-registered', data: { email: existing.email, loginLink: `${issuer}/account`, resetLink: `${issuer}/password/forgot` } }
          : { to: email, template: 'verify-email', data: { code, link: `${issuer}/interaction/${interactionUid}/signup/verify?token=${token}`, minutes: Math.round(deps.ttlSeconds / 60) } });
      });
      outbox.kick();
    },

    /**
     * Whether accounts at this address are made by its company's identity provider, not by
     * sign-up (the domain's default policy requires SSO): the page says so and points there.
     * Decided for the domain, never the account, so it tells nothing about whether one exists.
     */
    async companySignIn(emailInput: string): Promise<{ connector: string; manager: string } | undefined> {
      const email = normalizeEmail(emailInput);
      if (!email) return undefined;
      const decision = deps.decisions.decide({ subject: await deps.decisions.addressSubject(email), stage: 'sign_up', method: 'email' });
      return decision.outcome === 'use_connector' ? { connector: decision.connector, manager: decision.manager } : undefined;
    },

    /** The shortest password a new account at this address may choose: the operator's, or its domain's default policy's when longer. */
    async minLengthFor(email: string): Promise<number> {
      return Math.max(policy.minLength, passwordMinLength(await deps.decisions.addressSubject(email)));
    },

    /** The open flow of an interaction, if any. */
    current: (interactionUid: string): Promise<SignupFlowRow | undefined> => flows.findOpen(interactionUid, now()),

    async verifyCode(interactionUid: string, code: string): Promise<CodeCheck> {
      const flow = await flows.findOpen(interactionUid, now());
      if (!flow) return 'expired';
      if (flow.verified_at) return 'verified';
      if (flow.attempts >= MAX_CODE_ATTEMPTS) return 'locked';
      const counted = await flows.countAttempt(flow.id);
      if (!counted || counted.attempts > MAX_CODE_ATTEMPTS) return 'locked';
      const submitted = code.replace(/\s+/g, '');
      if (!/^\d{6}$/.test(submitted) || !constantTimeEqual(codeHash(flow.id, submitted), flow.code_hash)) {
        return counted.attempts >= MAX_CODE_ATTEMPTS ? 'locked' : 'invalid';
      }
      await flows.markVerified(flow.id, now());
      return 'verified';
    },

    /** Verifies by the emailed link; returns the interaction it belongs to. */
    /** The interaction a still-usable link belongs to, without using it. */
    async linkTarget(token: string): Promise<string | undefined> {
      if (typeof token !== 'string' || token.length < 20 || token.length > 100) return undefined;
      return (await flows.findByLink(linkHash(token), now()))?.interaction_uid;
    },

    /** Whether the link already verified this interaction's open flow (opened a second time: a double click, a second tab). */
    async linkUsedFor(interactionUid: string, token: string): Promise<boolean> {
      if (typeof token !== 'string' || token.length < 20 || token.length > 100) return false;
      return (await flows.verifiedByLink(linkHash(token), interactionUid, now())) !== undefined;
    },

    async verifyLink(token: string): Promise<string | undefined> {
      if (typeof token !== 'string' || token.length < 20 || token.length > 100) return undefined;
      return (await flows.verifyByLink(linkHash(token), now()))?.interaction_uid;
    },

    /** Creates the account of a verified flow; the flow closes in the same transaction. */
    async complete(interactionUid: string, input: { name: string; password: string }): Promise<CompleteResult> {
      const flow = await flows.findOpen(interactionUid, now());
      if (!flow?.verified_at) return { ok: false, problem: 'signup.expired' };
      // The rule for names shown to others (src/shared/display-text.ts): no invisible or
      // reordering characters; a name of only those is no name.
      if (!input.name.trim()) return { ok: false, problem: 'signup.name_required' };
      const cleaned = displayText(input.name, MAX_NAME);
      if (!cleaned.ok) return { ok: false, problem: 'signup.name_invalid' };
      const name = cleaned.value;
      // Asked again right before creating: the answer may have changed since the code was sent
      // (the address was registered meanwhile, or its domain now signs in elsewhere). An address
      // on an organization's verified domain takes the password rules of its default policy.
      const { subject } = await deps.decisions.subjectForEmail(flow.email);
      const problem = policy.check(input.password, { email: flow.email, name, minLength: passwordMinLength(subject) });
      if (problem) return { ok: false, problem };
      const decision = deps.decisions.decide({ subject, stage: 'sign_up', method: 'email' });
      if (decision.outcome !== 'allow') return { ok: false, problem: subject.kind === 'account' ? 'signup.email_taken' : 'policy.method_not_allowed' };
      const passwordHash = await hasher.hash(input.password);
      try {
        const account = await db.transaction(async (tx) => {
          if (!(await flows.complete(tx, flow.id, now()))) return undefined;
          return accounts.insertWith(tx, { id: newId('acc'), email: flow.email, emailVerified: true, name, passwordHash });
        });
        return account ? { ok: true, account } : { ok: false, problem: 'signup.expired' };
      } catch (err) {
        // Someone registered the address after this flow began: the unique index decided.
        if ((err as { code?: string }).code === '23505') return { ok: false, problem: 'signup.email_taken' };
        throw err;
      }
    },
  };
}

export type RegistrationService = ReturnType<typeof createRegistrationService>;
