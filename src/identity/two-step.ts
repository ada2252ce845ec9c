import { randomInt } from 'node:crypto';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import type { Clock } from '../shared/clock.ts';
import { hmac, type SecretBox } from '../shared/crypto.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountRow } from '../persistence/queries/accounts.ts';
import type { TwoStepQueries } from '../persistence/queries/two-step.ts';
import type { Outbox } from '../mail/outbox.ts';
import { asProof, type Confirmation, type ProofInput, type Reauthentication } from './reauthentication.ts';
import type { RequestMeta, SecurityEvents } from './security-events.ts';
import { displayTime } from '../shared/display-time.ts';

/**
 * Two-step verification with TOTP (RFC 6238) and recovery codes (docs/flows/two-step.md).
 *
 * - The shared secret is sealed with SECRET_KEY, bound to its account.
 * - Codes of the previous, current and next 30-second step are accepted (clock drift, typing
 *   time); once a step's code is accepted, that step and older ones are refused, so a code
 *   seen over a shoulder or replayed by a proxy is worth nothing.
 * - Ten recovery codes are shown once; only keyed hashes are stored, each can be spent once.
 */
export const RECOVERY_CODE_COUNT = 10;
const PERIOD = 30;
/** ±1 time step (RFC 6238 §5.2 recommends at most one step of network delay). */
const TOLERANCE_SECONDS = PERIOD;
/** No 0/1/o/l/i: codes read aloud or copied from paper stay unambiguous. */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

export type TwoStepProblem = 'two_step.code_invalid' | 'two_step.code_used' | 'two_step.enrolment_code_invalid' | 'two_step.already_enabled' | 'two_step.not_enabled' | 'two_step.required' | 'password.current_wrong';

export type SecondStep =
  | { ok: true; method: 'totp' | 'recovery'; recoveryCodesLeft?: number }
  | { ok: false; problem: TwoStepProblem };

export interface Enrolment {
  /** Base32 secret for manual entry. */
  secret: string;
  /** otpauth:// URI (Key Uri Format), rendered as a QR code by the page. */
  uri: string;
}

export interface TwoStepStatus {
  enabled: boolean;
  enabledAt: Date | undefined;
  recoveryCodesLeft: number;
}

/** Associated data of a TOTP secret (also used by `secrets reseal`). */
export const secretContext = (accountId: string) => `totp_factors:${accountId}`;

/** Lower case, no spaces or dashes: how codes are compared. */
export function normaliseRecoveryCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '');
}

/** A 6-digit TOTP code, spaces allowed ("123 456" as some apps show it). */
const totpInput = (input: string) => {
  const digits = input.replace(/\s/g, '');
  return /^\d{6}$/.test(digits) ? digits : undefined;
};

export function createTwoStepService(deps: {
  db: Database;
  queries: TwoStepQueries;
  box: SecretBox;
  outbox: Outbox;
  events: SecurityEvents;
  clock: Clock;
  issuer: string;
  /** Keys the recovery-code hashes (derived from SECRET_KEY). */
  codeKey: Buffer;
  /** Label shown in authenticator apps. */
  productName: string;
  /** Organization policies will add their own reasons; today only the account's flag. */
  requiredFor?: (account: AccountRow) => boolean;
  /** Confirms turning it off by a recent login at two factors, or the password and a code. */
  reauthentication: Reauthentication;
}) {
  const { db, queries, box, outbox, events, clock } = deps;
  const now = () => new Date(clock.now());
  const epoch = () => Math.floor(clock.now() / 1000);
  const hashCode = (accountId: string, code: string) => hmac(deps.codeKey, `recovery:${accountId}:${normaliseRecoveryCode(code)}`);

  function newRecoveryCodes(): string[] {
    return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
      const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('');
      return `${chars.slice(0, 5)}-${chars.slice(5)}`;
    });
  }

  /** The time step `code` belongs to, if it is valid now and newer than `afterTimeStep`. */
  async function matchingStep(secret: string, code: string, afterTimeStep: number): Promise<number | undefined> {
    let result;
    try {
      result = await verifyTotp({ secret, token: code, epoch: epoch(), epochTolerance: TOLERANCE_SECONDS, afterTimeStep });
    } catch {
      // otplib refuses an afterTimeStep beyond the newest step it would accept (a clock that went
      // back, or instances whose clocks differ): nothing it could match is new, so no match.
      return undefined;
    }
    // The TOTP result carries the matched step; the union type also covers HOTP, which has none.
    return result.valid && 'timeStep' in result ? (result.timeStep as number) : undefined;
  }

  async function notify(tx: Queryable, account: AccountRow, template: 'two-step-enabled' | 'two-step-disabled' | 'recovery-code-used', extra: Record<string, unknown> = {}) {
    await outbox.enqueue(tx, {
      to: account.email,
      template,
      data: { name: account.name, email: account.email, when: displayTime(now()), resetLink: `${deps.issuer}/password/forgot`, settingsLink: `${deps.issuer}/account/security`, ...extra },
    });
  }

  async function replaceCodes(tx: Queryable, accountId: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    await queries.replaceRecoveryCodes(tx, accountId, codes.map((c) => hashCode(accountId, c)), now());
    return codes;
  }

  /** Checks a TOTP code or spends a recovery code for a confirmed factor. */
  async function verify(account: AccountRow, input: string, meta: RequestMeta): Promise<SecondStep> {
    const factor = await queries.findFactor(account.id);
    if (!factor?.confirmed_at) return { ok: false, problem: 'two_step.not_enabled' };
    const digits = totpInput(input);
    if (digits) {
      const secret = box.open(factor.secret_sealed, secretContext(account.id));
      const step = await matchingStep(secret, digits, Number(factor.last_time_step));
      // The conditional update decides between two requests racing with the same code.
      if (step !== undefined && (await queries.useTimeStep(account.id, step))) return { ok: true, method: 'totp' };
      // A code of this moment that was already used (at enrolment, or a login a few seconds ago):
      // refused all the same, but the person is told to wait for the next one rather than that
      // the code is wrong. It is still a failed attempt, counted as one.
      if (step === undefined && (await matchingStep(secret, digits, 0)) !== undefined) return { ok: false, problem: 'two_step.code_used' };
      return { ok: false, problem: 'two_step.code_invalid' };
    }
    const normalised = normaliseRecoveryCode(input);
    if (normalised.length !== 10 || [...normalised].some((c) => !RECOVERY_ALPHABET.includes(c))) return { ok: false, problem: 'two_step.code_invalid' };
    const left = await db.transaction(async (tx) => {
      if (!(await queries.spendRecoveryCode(tx, account.id, hashCode(account.id, normalised), now()))) return undefined;
      const remaining = await queries.unusedRecoveryCodes(account.id, tx);
      await events.record({ type: 'recovery_code.used', accountId: account.id, detail: { remaining } }, meta, tx);
      await notify(tx, account, 'recovery-code-used', { remaining });
      return remaining;
    });
    if (left === undefined) return { ok: false, problem: 'two_step.code_invalid' };
    outbox.kick();
    return { ok: true, method: 'recovery', recoveryCodesLeft: left };
  }

  /** Whether the person must keep (or turn on) two-step verification. */
  const required = (account: AccountRow): boolean => account.two_step_required || (deps.requiredFor?.(account) ?? false);

  return {
    async status(accountId: string): Promise<TwoStepStatus> {
      const factor = await queries.findFactor(accountId);
      const enabled = Boolean(factor?.confirmed_at);
      return { enabled, enabledAt: factor?.confirmed_at ?? undefined, recoveryCodesLeft: enabled ? await queries.unusedRecoveryCodes(accountId) : 0 };
    },

    async isEnabled(accountId: string): Promise<boolean> {
      return Boolean((await queries.findFactor(accountId))?.confirmed_at);
    },

    /** Whether the person must turn two-step verification on before logging in, and keep it on. */
    required,

    /**
     * A new secret for enrolment. Nothing is stored: the caller keeps it sealed in the browser
     * that asked (a cookie bound to its session or interaction), so a pending secret is never
     * shown to anyone else, and an abandoned one simply disappears.
     */
    async startEnrolment(account: AccountRow): Promise<Enrolment | { problem: 'two_step.already_enabled' }> {
      if ((await queries.findFactor(account.id))?.confirmed_at) return { problem: 'two_step.already_enabled' };
      const secret = generateSecret();
      return { secret, uri: generateURI({ issuer: deps.productName, label: account.email, secret }) };
    },

    /** The QR code and key of a secret being enrolled, to show them again after a wrong code. */
    enrolmentFor(account: AccountRow, secret: string): Enrolment {
      return { secret, uri: generateURI({ issuer: deps.productName, label: account.email, secret }) };
    },

    /** The first correct code switches the factor on and returns the recovery codes, shown once. */
    async confirmEnrolment(account: AccountRow, secret: string, code: string, meta: RequestMeta): Promise<{ ok: true; recoveryCodes: string[] } | { ok: false; problem: TwoStepProblem }> {
      if (!/^[A-Z2-7]{16,128}$/.test(secret)) return { ok: false, problem: 'two_step.enrolment_code_invalid' };
      const digits = totpInput(code);
      const step = digits ? await matchingStep(secret, digits, 0) : undefined;
      // No recovery codes exist yet: the message asks for the app's code alone.
      if (step === undefined) return { ok: false, problem: 'two_step.enrolment_code_invalid' };
      const codes = await db.transaction(async (tx) => {
        // The unique account id decides a race with another enrolment: one factor per account.
        if (!(await queries.insertConfirmed(tx, account.id, box.seal(secret, secretContext(account.id)), step, now()))) return undefined;
        await events.record({ type: 'two_step.enabled', accountId: account.id }, meta, tx);
        await notify(tx, account, 'two-step-enabled');
        return replaceCodes(tx, account.id);
      });
      if (!codes) return { ok: false, problem: 'two_step.already_enabled' };
      outbox.kick();
      return { ok: true, recoveryCodes: codes };
    },

    verify,

    /** New recovery codes; the old set stops working in the same transaction. */
    async regenerateRecoveryCodes(account: AccountRow, meta: RequestMeta): Promise<string[] | undefined> {
      return db.transaction(async (tx) => {
        const factor = await queries.findFactor(account.id, tx);
        if (!factor?.confirmed_at) return undefined;
        await events.record({ type: 'two_step.recovery_codes_regenerated', accountId: account.id }, meta, tx);
        return replaceCodes(tx, account.id);
      });
    },

    /**
     * Turning it off asks the decision point (`disable_factor`): refused when the account
     * requires it (by its own flag or, later, a manager's rule), whatever page or request asks;
     * otherwise it needs a recent login at two factors, or the password and a current code typed
     * now (a recovery code counts, for the person who lost the phone). A code typed is always
     * checked. The owner is told by email.
     */
    async disable(account: AccountRow, proofInput: ProofInput, code: string, meta: RequestMeta): Promise<{ ok: true } | { ok: false; problem: TwoStepProblem } | Exclude<Confirmation, { ok: true }>> {
      const typedCode = code.trim().length > 0;
      let checked: SecondStep | undefined;
      const confirmed = await deps.reauthentication.confirm(account, asProof(proofInput), {
        stage: 'disable_factor',
        secondFactor: typedCode ? async () => (checked = await verify(account, code, meta)).ok : undefined,
      });
      if (!confirmed.ok) {
        if (confirmed.problem === 'policy.two_step_required') return { ok: false, problem: 'two_step.required' };
        const wrongCode = checked as SecondStep | undefined;
        if (wrongCode && !wrongCode.ok) return wrongCode;
        return confirmed;
      }
      if (!checked && typedCode) {
        checked = await verify(account, code, meta);
        if (!checked.ok) return checked;
      }
      if (!(await queries.findFactor(account.id))?.confirmed_at) return { ok: false, problem: 'two_step.not_enabled' };
      await db.transaction(async (tx) => {
        await queries.removeFactor(tx, account.id);
        await events.record({ type: 'two_step.disabled', accountId: account.id }, meta, tx);
        await notify(tx, account, 'two-step-disabled');
      });
      outbox.kick();
      return { ok: true };
    },

    setRequired: (accountId: string, required: boolean) => queries.setRequired(accountId, required),
  };
}

export type TwoStepService = ReturnType<typeof createTwoStepService>;
