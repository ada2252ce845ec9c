/**
 * Normalises an email address for storage and comparison: trimmed, Unicode NFC, lower-case.
 * Lower-casing the local part departs from RFC 5321 §2.4 (which lets a server treat it as
 * case-sensitive) because no mailbox provider our users use does, and two accounts for
 * "Ann@x" and "ann@x" would be one person with two accounts.
 *
 * Returns undefined for anything that is not a plausible single address: the checks follow the
 * limits of RFC 5321 §4.5.3.1 (64-octet local part, 254 overall) and refuse quoted local parts,
 * IP literals and dotless domains, which no real sign-up needs.
 */
const LOCAL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/u;
const LABEL = /^(?!-)[\p{L}\p{N}-]{1,63}(?<!-)$/u;

/**
 * The same checks for an all-ASCII address (NFC leaves ASCII as it is; \p{L}\p{N} are [a-z0-9]
 * there once lower-cased), without the Unicode machinery: a bulk import normalises millions
 * (issue 14). Anything it does not match goes through the full path.
 */
// Case-insensitive without the u flag: [a-z] then matches A-Z and nothing outside ASCII (not
// even the Kelvin sign, which lower-cases to "k").
const ASCII_ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

export function normalizeEmail(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const trimmed = input.trim();
  if (trimmed.length <= 254 && ASCII_ADDRESS.test(trimmed) && trimmed.indexOf('@') <= 64) return trimmed.toLowerCase();
  return normalizeEmailFully(trimmed);
}

/** The full checks, for any address: the reference the ASCII path above is tested against. */
export function normalizeEmailFully(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const email = input.trim().normalize('NFC').toLowerCase();
  if (email.length > 254) return undefined;
  const at = email.lastIndexOf('@');
  if (at <= 0 || at !== email.indexOf('@')) return undefined;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.length > 64 || !LOCAL.test(local)) return undefined;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return undefined;
  return email;
}
