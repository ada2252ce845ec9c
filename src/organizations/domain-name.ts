import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { getDomain } from 'tldts';
import { isPublicEmailDomain } from './public-email-domains.ts';

/**
 * Domain names as organizations type them, normalised to the one form stored and compared:
 * lower-case ASCII, internationalised names as punycode (UTS #46 through WHATWG URL's
 * `domainToASCII`, as browsers and mail software map them), no trailing dot.
 *
 * Refused, each with its own message: what is not a host name (RFC 1035 §2.3.1 letters, digits
 * and hyphens in labels of 1–63 octets, RFC 1123 §2.1 digits first allowed), IP addresses,
 * single labels (`localhost`, a bare TLD), names over 253 octets (RFC 1035 §3.1 less the final
 * dot and length octets), public mail providers' domains, and public suffixes.
 *
 * A **public suffix** (`co.uk`, `github.io`, `herokuapp.com`) is a name under which anyone can
 * register or be given a name of their own: whoever proved it would come to manage strangers'
 * accounts. The list is Mozilla's Public Suffix List, ICANN and private sections, as bundled in
 * the `tldts` package (updated with it; never fetched at run time). A name under one
 * (`acme.co.uk`, `acme.github.io`) is a registrable domain and can be verified.
 */
export type DomainProblem =
  | 'domain.empty'
  | 'domain.malformed'
  | 'domain.ip_address'
  | 'domain.single_label'
  | 'domain.too_long'
  | 'domain.public_email'
  | 'domain.public_suffix';

export type NormalizedDomain = { ok: true; domain: string } | { ok: false; problem: DomainProblem };

/** RFC 1035 §3.1 / RFC 1123: 255 octets on the wire are 253 characters in dotted form. */
export const MAX_DOMAIN_LENGTH = 253;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/**
 * Characters that end a host in a URL (`/`, `?`, `#`, `@`, `:`, `\`), percent-escapes, brackets and
 * spaces: `domainToASCII` would cut or decode them (`a.com/x` → `a.com`), so they are refused first.
 */
const NOT_IN_A_NAME = /[\s/?#@:\\%[\]<>"'`^{}|,;*!$&()=+~]/u;

/** Whether the name would be read as an IPv4 address (`127.1`, `0x7f.1`): the last label is numeric. */
function looksNumeric(label: string): boolean {
  return /^(0x[0-9a-f]*|\d+)$/i.test(label);
}

/**
 * An A-label (`xn--…`, RFC 5890 §2.3.2.1) must decode to a U-label that encodes back to it:
 * `domainToASCII` passes undecodable ones (`xn--zz`) through unchanged.
 */
function validPunycode(label: string): boolean {
  if (!label.startsWith('xn--')) return true;
  const unicode = domainToUnicode(label);
  return unicode !== label && domainToASCII(unicode) === label;
}

export function normalizeDomain(input: unknown): NormalizedDomain {
  if (typeof input !== 'string') return { ok: false, problem: 'domain.empty' };
  let value = input.trim();
  if (!value) return { ok: false, problem: 'domain.empty' };
  // Bounded before any work: IDN mapping of a megabyte is wasted time.
  if (value.length > 4 * MAX_DOMAIN_LENGTH) return { ok: false, problem: 'domain.too_long' };
  const bare = value.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return { ok: false, problem: 'domain.ip_address' };
  if (NOT_IN_A_NAME.test(value)) return { ok: false, problem: 'domain.malformed' };
  // One trailing dot is the fully qualified form of the same name.
  if (value.endsWith('.')) value = value.slice(0, -1);
  const ascii = domainToASCII(value.normalize('NFC').toLowerCase());
  if (!ascii) {
    // An all-numeric last label is an address to the URL parser, however odd (`1.2.3.4.5`).
    return looksNumeric(value.split('.').at(-1) ?? '') ? { ok: false, problem: 'domain.ip_address' } : { ok: false, problem: 'domain.malformed' };
  }
  if (isIP(ascii)) return { ok: false, problem: 'domain.ip_address' };
  if (ascii.length > MAX_DOMAIN_LENGTH) return { ok: false, problem: 'domain.too_long' };
  const labels = ascii.split('.');
  if (labels.length < 2) return labels[0] && LABEL.test(labels[0]) ? { ok: false, problem: 'domain.single_label' } : { ok: false, problem: 'domain.malformed' };
  if (!labels.every((label) => LABEL.test(label) && validPunycode(label))) return { ok: false, problem: 'domain.malformed' };
  if (looksNumeric(labels.at(-1)!)) return { ok: false, problem: 'domain.ip_address' };
  if (isPublicEmailDomain(ascii)) return { ok: false, problem: 'domain.public_email' };
  if (isPublicSuffix(ascii)) return { ok: false, problem: 'domain.public_suffix' };
  return { ok: true, domain: ascii };
}

/**
 * Whether a normalised name is itself a public suffix: it has no registrable domain. Names
 * under a TLD the list does not know get its default rule (`*`: the last label), so
 * `corp.internal` is registrable and `internal` was already refused as a single label.
 */
export function isPublicSuffix(domain: string): boolean {
  return getDomain(domain, { allowPrivateDomains: true, extractHostname: false, validateHostname: false }) === null;
}

/** The domain part of a normalised email address (`ada@Acme.com` → `acme.com`), or undefined. */
export function domainOfEmail(email: string): string | undefined {
  const at = email.lastIndexOf('@');
  if (at < 1) return undefined;
  const result = normalizeDomainSyntax(email.slice(at + 1));
  return result.ok ? result.domain : undefined;
}

/** Like normalizeDomain without the public-provider and public-suffix rules (for reading addresses, not for claiming). */
export function normalizeDomainSyntax(input: string): NormalizedDomain {
  const result = normalizeDomain(input);
  if (result.ok || (result.problem !== 'domain.public_email' && result.problem !== 'domain.public_suffix')) return result;
  let value = input.trim();
  if (value.endsWith('.')) value = value.slice(0, -1);
  return { ok: true, domain: domainToASCII(value.normalize('NFC').toLowerCase()) };
}
