import type { AddressUse, TrelloEmail } from '../persistence/queries/trello-members.ts';

/**
 * Which of a Trello member's addresses the account keeps (docs/flows/trello-migration.md):
 * verified first, then the primary, then the most recently used to log in, then the oldest.
 * Addresses without a date sort after those with one; the address itself breaks exact ties so
 * the choice never depends on storage order.
 */
export function rankEmails(emails: readonly TrelloEmail[]): TrelloEmail[] {
  const time = (d: Date | null, missing: number) => (d ? d.getTime() : missing);
  return [...emails].sort((a, b) =>
    Number(b.verified) - Number(a.verified)
    || Number(b.is_primary) - Number(a.is_primary)
    || time(b.last_used_at, -Infinity) - time(a.last_used_at, -Infinity)
    || time(a.added_at, Infinity) - time(b.added_at, Infinity)
    || a.email.localeCompare(b.email));
}

export function chooseEmail(emails: readonly TrelloEmail[]): TrelloEmail | undefined {
  return rankEmails(emails)[0];
}

/** Addresses the person may pick instead in the review step: the verified ones, best first. */
export function pickableEmails(emails: readonly TrelloEmail[]): TrelloEmail[] {
  return rankEmails(emails).filter((e) => e.verified);
}

/**
 * The verified addresses a link can still keep, best first: not an address of an account that
 * already has a Trello member (one member per account, decision 0013) nor one retired for an
 * account. An account's address without a member stays: proving that account links to it.
 * `useOf` says what an address already is (`addressesInUse`), undefined when it is free.
 */
export function linkableEmails(emails: readonly TrelloEmail[], useOf: (email: string) => AddressUse | undefined): TrelloEmail[] {
  return pickableEmails(emails).filter((e) => {
    const use = useOf(e.email);
    return use !== 'member' && use !== 'retired';
  });
}

/** Free-mail domains: an address there looks personal, anything else looks like a company's. */
const PERSONAL_DOMAINS = new Set([
  'gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'yahoo.com', 'ymail.com',
  'icloud.com', 'me.com', 'mac.com', 'aol.com', 'proton.me', 'protonmail.com', 'gmx.com', 'gmx.de', 'gmx.net',
  'web.de', 'mail.com', 'yandex.com', 'yandex.ru', 'zoho.com', 'fastmail.com', 'hey.com', 'free.fr', 'orange.fr',
  'laposte.net', 'qq.com', '163.com', 'naver.com',
]);

export function looksPersonal(email: string): boolean {
  return PERSONAL_DOMAINS.has(email.slice(email.lastIndexOf('@') + 1).toLowerCase());
}

/**
 * True when the chosen address is of the other kind (personal vs company) than the one the
 * person used last: the review page then says so explicitly instead of swapping silently.
 */
export function kindChanges(chosen: TrelloEmail, emails: readonly TrelloEmail[]): boolean {
  const lastUsed = [...emails].filter((e) => e.last_used_at).sort((a, b) => b.last_used_at!.getTime() - a.last_used_at!.getTime())[0];
  return Boolean(lastUsed && lastUsed.email !== chosen.email && looksPersonal(lastUsed.email) !== looksPersonal(chosen.email));
}
