import { createRequire } from 'node:module';
import { domainToASCII } from 'node:url';

/**
 * Domains of public mail providers (free, ISP and throwaway mail): no organization may verify
 * them, since whoever runs such a domain would otherwise come to manage every account people
 * opened with an address there (docs/decisions/0028-domain-verification.md).
 *
 * The list is the `email-providers` package (about 8,800 domains, ISC, kept up to date by its
 * maintainer; chosen over `free-email-domains`, whose install script downloads and rewrites its
 * list at install time). On top of it, the families below are refused under every country code:
 * `gmx.ch`, `yandex.by` and the like come and go faster than any list.
 */
const FAMILIES = new Set([
  'aol', 'gmail', 'gmx', 'googlemail', 'hotmail', 'icloud', 'live', 'mail', 'outlook', 'proton', 'protonmail',
  'yahoo', 'yandex', 'ymail', 'zoho',
]);

/** Second-level labels under which providers register per country (`co.uk`, `com.br`, `ne.jp`). */
const COUNTRY_SECOND_LEVELS = new Set(['ac', 'co', 'com', 'ne', 'net', 'or', 'org']);

let listed: ReadonlySet<string> | undefined;

function list(): ReadonlySet<string> {
  // Loaded on first use: about 140 kB of JSON that most processes never need.
  listed ??= new Set(
    (createRequire(import.meta.url)('email-providers/all.json') as string[])
      .map((entry) => domainToASCII(entry.trim().toLowerCase()))
      .filter(Boolean),
  );
  return listed;
}

/** `gmx.de`, `yahoo.co.jp`, `yandex.com.tr`: a family name right under a public suffix. */
function isFamily(labels: readonly string[]): boolean {
  const [first, ...rest] = labels;
  if (!first || !FAMILIES.has(first)) return false;
  if (rest.length === 1) return true;
  return rest.length === 2 && COUNTRY_SECOND_LEVELS.has(rest[0]!) && rest[1]!.length === 2;
}

/**
 * Whether a normalised domain (lower-case ASCII, no trailing dot) belongs to a public mail
 * provider: it, or a domain it is under (`eu.gmail.com`), is listed or is of a family.
 */
export function isPublicEmailDomain(domain: string): boolean {
  const labels = domain.split('.');
  const known = list();
  for (let i = 0; i < labels.length - 1; i++) {
    const suffix = labels.slice(i);
    if (known.has(suffix.join('.')) || isFamily(suffix)) return true;
  }
  return false;
}
