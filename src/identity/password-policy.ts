import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * Password rules of NIST SP 800-63B §5.1.1.2: a minimum length (8, configurable higher), long
 * passphrases allowed (up to 1024 characters), no composition rules, and a refusal of passwords
 * that are common (zxcvbn-ts's list of ~49,000), contain the email's local part, or equal the
 * person's name. Each refusal says which rule failed.
 */
export type PasswordProblem = 'password.too_short' | 'password.too_long' | 'password.common' | 'password.contains_email' | 'password.equals_name';

/** Longest password accepted; argon2 copes with more, but nothing human needs it (NIST asks for ≥ 64). */
export const MAX_PASSWORD_LENGTH = 1024;

let common: Set<string> | undefined;
const commonPasswords = () => (common ??= new Set(dictionary['passwords-common'] as string[]));

/** Length in characters as people count them (code points), not UTF-16 units. */
const lengthOf = (value: string) => [...value].length;

export function createPasswordPolicy(options: { minLength: number }) {
  return {
    minLength: options.minLength,
    /**
     * `minLength`: a longer minimum the account's organization sets (its authentication policy,
     * `passwordMinLength` of src/policy/decision.ts); the operator's own always holds.
     */
    check(password: string, context: { email?: string | undefined; name?: string | null | undefined; minLength?: number | undefined } = {}): PasswordProblem | undefined {
      const length = lengthOf(password);
      if (length < Math.max(options.minLength, context.minLength ?? 0)) return 'password.too_short';
      if (length > MAX_PASSWORD_LENGTH) return 'password.too_long';
      const folded = password.normalize('NFKC').toLowerCase();
      if (commonPasswords().has(folded)) return 'password.common';
      const local = context.email?.split('@')[0]?.toLowerCase();
      if (local && local.length >= 3 && folded.includes(local)) return 'password.contains_email';
      const name = context.name?.normalize('NFKC').trim().toLowerCase();
      if (name && folded.trim() === name) return 'password.equals_name';
      return undefined;
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;
