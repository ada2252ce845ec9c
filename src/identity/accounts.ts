import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import { normalizeEmail } from './email-address.ts';
import type { PasswordHasher } from './password-hasher.ts';
import { MAX_PASSWORD_LENGTH } from './password-policy.ts';
import { applyProfileUpdate, type ProfileUpdate, type Viewer } from './profile.ts';

export type { AccountRow };

export type Authentication =
  /**
   * The password is the account's, whatever the account's state: whether it may sign in
   * (deactivated, closed, reopened within its grace period) is the decision point's answer
   * (src/policy/), asked by the login's completion service.
   */
  | { ok: true; account: AccountRow }
  /** `accountId` and `reason` are for the audit trail only; people see `code`. */
  | { ok: false; code: 'login.invalid_credentials'; accountId?: string; reason: 'unknown_account' | 'no_password' | 'wrong_password' };

export interface NewAccountInput {
  email: string;
  password?: string | undefined;
  name?: string | undefined;
  nickname?: string | undefined;
  emailVerified?: boolean | undefined;
}

export { MAX_PASSWORD_LENGTH };

export function createAccountService(deps: { accounts: AccountQueries; hasher: PasswordHasher; clock: Clock }) {
  const { accounts, hasher, clock } = deps;

  return {
    findById: (id: string) => accounts.findById(id),

    /** Saves the profile fields and visibilities the person sent; the others keep their values. */
    updateProfile: (account: AccountRow, input: ProfileUpdate) => applyProfileUpdate(accounts, account, input, new Date(clock.now())),

    /**
     * Who `viewerId` is to the account's profile (decision 0010): the person themself; someone of
     * the same organization — an admin or member of an organization that manages the account, or
     * an account managed by the same organization; or anyone (no viewer, or nobody in common).
     */
    async audience(viewerId: string | undefined, accountId: string): Promise<Viewer> {
      if (!viewerId) return 'anyone';
      if (viewerId === accountId) return 'self';
      return (await accounts.shareOrganization(viewerId, accountId)) ? 'organization' : 'anyone';
    },

    async findByEmail(emailInput: string): Promise<AccountRow | undefined> {
      const email = normalizeEmail(emailInput);
      return email ? accounts.findByEmail(email) : undefined;
    },

    /**
     * Checks an email and password. An unknown address, an account without a password and a
     * wrong password all cost one argon2 verification and answer `login.invalid_credentials`,
     * so neither the message nor the time tells whether the account exists. It verifies only:
     * whether the account may sign in now is the decision point's (src/policy/decision.ts), so
     * an inactive account is reported as such only after the right password, and a closure is
     * cancelled only when the whole login (second step included) completes.
     */
    async authenticate(emailInput: string, password: string, read?: { account: AccountRow | undefined }): Promise<Authentication> {
      const email = normalizeEmail(emailInput);
      // `read`: the caller already looked the address up as `findForLogin` does (the password
      // step's one statement, src/persistence/queries/password-step.ts).
      const account = read ? read.account : email ? await accounts.findForLogin(email) : undefined;
      const check = await hasher.verify(account?.password_hash, password.slice(0, MAX_PASSWORD_LENGTH));
      if (!account) return { ok: false, code: 'login.invalid_credentials', reason: 'unknown_account' };
      if (!check.ok) return { ok: false, code: 'login.invalid_credentials', accountId: account.id, reason: account.password_hash ? 'wrong_password' : 'no_password' };
      if (check.needsRehash && account.password_hash) {
        // Parameters were raised since this hash was made: store a new hash of the same password.
        await accounts.replacePasswordHash(account.id, account.password_hash, await hasher.rehash(password));
      }
      return { ok: true, account };
    },

    async create(input: NewAccountInput): Promise<AccountRow> {
      const email = normalizeEmail(input.email);
      if (!email) throw new AppError('account.invalid_email', 400);
      if ((await accounts.findByEmail(email)) || (await accounts.isRetired(email))) throw new AppError('account.email_taken', 409);
      const passwordHash = input.password ? await hasher.hash(input.password) : null;
      try {
        return await accounts.insert({
          id: newId('acc'),
          email,
          emailVerified: input.emailVerified ?? false,
          name: input.name ?? null,
          nickname: input.nickname ?? null,
          passwordHash,
        });
      } catch (err) {
        // A concurrent sign-up won the race for the address: the unique index decided.
        if ((err as { code?: string }).code === '23505') throw new AppError('account.email_taken', 409, { cause: err });
        throw err;
      }
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
