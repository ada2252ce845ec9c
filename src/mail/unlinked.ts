/**
 * Text an admin chose (an organization's name, an inviter's name), as mail shows it: plain text
 * that mail clients do not turn into a link. Clients link what looks like a URL, a host name or
 * an address (`evil.example`, `https://…`, `www.…`, `x@y`) even in a plain-text part; an
 * invitation goes to any address an admin types, so a name like "Reset your password at
 * evil.example" must not become a button to a stranger's site in our mail.
 *
 * A ZERO WIDTH NON-JOINER (U+200C) after each `.`, `:`, `/` and `@` breaks those patterns for the
 * linkifiers of common clients while drawing nothing (the technique senders use against
 * auto-linked dates and addresses). The names themselves can hold no such character
 * (src/shared/display-text.ts refuses format characters), so only our own rendering adds them.
 * In HTML the text is escaped as well (Eta's `<%= %>`); it is never put in an `href`.
 */
export function unlinked(text: unknown): string {
  return String(text ?? '').replace(/[.:/@]/g, (c) => `${c}\u200C`);
}
