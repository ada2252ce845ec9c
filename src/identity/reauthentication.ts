import type { AccountRow } from '../persistence/queries/accounts.ts';
import { ACR_ONE_FACTOR, methodsOf, provenanceFrom, satisfies, type Acr, type Decision, type DenyReason, type Method, type Policy, type Provenance } from '../policy/policy.ts';
import type { PasswordHasher } from './password-hasher.ts';

/**
 * Privileged sessions (docs/flows/settings.md, docs/decisions/0027-reauthentication-by-any-method.md).
 *
 * A sensitive change in settings — the password, the address, closing the account, two-step
 * verification — needs a recent login at the level the account requires, not specifically a
 * password: the decision point (`reauthenticate`, or `disable_factor` for turning a factor off)
 * is given how the browser's session was made. When it allows, the change goes ahead with
 * nothing typed; when it asks to re-authenticate, the person confirms by any method it lists:
 * the current password typed on the form (when one factor is enough; with a code from the
 * authenticator when two are wanted), or a new login through the login pages (`prompt=login`),
 * which is how a password-less Google account proves itself — through Google.
 *
 * What is typed is always checked, even when the session alone would do: the form does not ask
 * for it then, so only someone guessing sends it, and a wrong guess must count. Except where the
 * password is not one of the account's methods (its organization requires its identity provider,
 * decision 0033): then the old password stored from before the switch is no input at all — a
 * typed one is answered as any other, after a decoy check of the same cost, so a session cannot
 * be used to learn whether the retired password is right (decision 0048).
 */

/** How a person confirms a change: the session's login, and whatever they typed. */
export interface Proof {
  /** How the browser's session was made (from the engine's session: amr, acr, auth time). */
  login?: { amr?: string[] | undefined; acr?: string | undefined; authTime?: number | undefined } | undefined;
  /** The current password, typed on the form. */
  password?: string | undefined;
}

/** A caller that only has a typed password (the CLI, older callers): a bare string. */
export type ProofInput = Proof | string;

export const asProof = (input: ProofInput): Proof => (typeof input === 'string' ? { password: input } : input);

export type Confirmation =
  | { ok: true; via: 'session' | 'password' | 'password_and_code' }
  | { ok: false; problem: 'password.current_wrong' }
  /** Prove yourself again by one of `methods`, reaching `wantedAcr`. */
  | { ok: false; problem: 'reauth.required'; methods: Method[]; wantedAcr: Acr }
  | { ok: false; problem: DenyReason };

export type ReauthStage = 'reauthenticate' | 'disable_factor';

/** What a settings page offers to confirm a change with: nothing (recent login), or these ways. */
export interface ConfirmOptions {
  /** A recent login suffices: nothing to type. */
  fresh: boolean;
  /** The current password may be typed on the form (with a code when two factors are wanted). */
  password: boolean;
  /** Two factors are wanted (two-step verification required, or turning it off). */
  twoFactors: boolean;
  /** Signing in again through Google is among the ways (a password-less Google account's only one). */
  google: boolean;
  /** The decision point refuses the change whatever is proven. */
  denied?: DenyReason;
}

export function createReauthentication(deps: { policy: Policy; hasher: PasswordHasher }) {
  const { policy, hasher } = deps;

  async function decisionFor(account: AccountRow, login: Proof['login'], stage: ReauthStage): Promise<{ decision: Decision; hasPassword: boolean; passwordIsMethod: boolean }> {
    const subject = await policy.subject(account);
    const provenance: Provenance | undefined = provenanceFrom(login);
    // Whatever the outcome (a recent session lists no methods), whether a password may prove
    // this account at all: not when its policy requires a connector.
    const passwordIsMethod = methodsOf(subject).includes('password');
    return { decision: policy.decide({ subject, stage, provenance }), hasPassword: subject.hasPassword, passwordIsMethod };
  }

  return {
    /** What the page shows before anything is submitted. */
    async options(account: AccountRow, login: Proof['login'], stage: ReauthStage = 'reauthenticate'): Promise<ConfirmOptions> {
      const { decision, hasPassword } = await decisionFor(account, login, stage);
      if (decision.outcome === 'deny') return { fresh: false, password: false, twoFactors: false, google: false, denied: decision.reason };
      if (decision.outcome !== 'reauthenticate') return { fresh: true, password: false, twoFactors: false, google: false };
      const twoFactors = !satisfies(ACR_ONE_FACTOR, decision.wantedAcr);
      return {
        fresh: false,
        // Two factors typed on a form means the password and a code: only where the form has a
        // code field (turning two-step off); elsewhere a new login reaches them.
        password: hasPassword && decision.methods.includes('password') && (!twoFactors || stage === 'disable_factor'),
        twoFactors,
        google: decision.methods.includes('google'),
      };
    },

    /**
     * Whether the change may go ahead. `secondFactor` checks a code typed with the password,
     * called only when two factors are wanted and the password was right.
     */
    async confirm(account: AccountRow, input: ProofInput, options: { stage?: ReauthStage; secondFactor?: () => Promise<boolean> } = {}): Promise<Confirmation> {
      const proof = asProof(input);
      const { decision, hasPassword, passwordIsMethod } = await decisionFor(account, proof.login, options.stage ?? 'reauthenticate');
      if (decision.outcome === 'deny') return { ok: false, problem: decision.reason };
      const typed = typeof proof.password === 'string' && proof.password.length > 0;
      if (typed && !passwordIsMethod) {
        // The password is no method of this account (a connector is required): the stored hash is
        // never consulted. A decoy check (the hasher's answer for a missing hash) keeps the time
        // of a right and a wrong password alike, and the answer below ignores what was typed.
        await hasher.verify(null, proof.password!);
        if (decision.outcome !== 'reauthenticate') return { ok: true, via: 'session' };
        return { ok: false, problem: 'reauth.required', methods: decision.methods, wantedAcr: decision.wantedAcr };
      }
      // Verified even for an account without a password (the hasher spends the same time on a
      // missing hash), so the answer's timing says nothing about whether there is one.
      if (typed && !(await hasher.verify(account.password_hash, proof.password!)).ok) return { ok: false, problem: 'password.current_wrong' };
      if (decision.outcome !== 'reauthenticate') return { ok: true, via: 'session' };
      if (typed && hasPassword && decision.methods.includes('password')) {
        if (satisfies(ACR_ONE_FACTOR, decision.wantedAcr)) return { ok: true, via: 'password' };
        if (options.secondFactor && (await options.secondFactor())) return { ok: true, via: 'password_and_code' };
      }
      return { ok: false, problem: 'reauth.required', methods: decision.methods, wantedAcr: decision.wantedAcr };
    },
  };
}

export type Reauthentication = ReturnType<typeof createReauthentication>;
