import { Resolver } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { constantTimeEqual } from '../shared/crypto.ts';
import { randomSecret } from '../shared/ids.ts';
import { isPublicAddress } from './network-address.ts';

/**
 * Proof that an organization controls a domain (docs/decisions/0028-domain-verification.md): the
 * domain's token published by whoever runs the domain, either
 *
 *   - as a DNS TXT record on the domain itself: `lanyard-domain-verification=<token>`, or
 *   - as a file: `https://<domain>/.well-known/lanyard-domain-verification.txt` holding the token
 *     (RFC 8615 well-known location).
 *
 * Lookups go through one `dns.promises.Resolver` on the configured servers (DNS_SERVERS), and the
 * HTTPS check connects to an address that resolver returned — pinned, so the name cannot resolve
 * elsewhere between the check and the connection — never a private one unless
 * ALLOW_PRIVATE_NETWORK_UPSTREAMS (refused in production: a domain is anyone's choice). It follows no redirect off the domain, reads at most 4 KiB, and
 * gives up after DOMAIN_VERIFICATION_TIMEOUT_SECONDS.
 */
export const PRODUCT_PREFIX = 'lanyard-domain-verification';
export const TXT_PREFIX = `${PRODUCT_PREFIX}=`;
export const WELL_KNOWN_PATH = `/.well-known/${PRODUCT_PREFIX}.txt`;
/** Enough for the token and a comment line; a larger answer is not our file. */
export const MAX_FILE_BYTES = 4096;
const MAX_REDIRECTS = 3;

export type VerificationMethod = 'dns' | 'https';

/**
 * Why a check failed: nothing published (`not_found`: no TXT record of ours, no file), another
 * token published (`wrong_token`: an older token, or another organization's), the lookup failed
 * (`dns_error`: a server failure or time-out, worth retrying), the web server could not be used
 * (`http_error`: refused, TLS, a status other than 200, a redirect elsewhere, too large).
 */
export type CheckProblem = 'not_found' | 'wrong_token' | 'dns_error' | 'http_error';

export type CheckResult =
  | { ok: true; method: VerificationMethod }
  | { ok: false; method: VerificationMethod; problem: CheckProblem; detail: string };

/** A new verification token: 160 random bits, base64url (fits a TXT string and a URL). */
export function newVerificationToken(): string {
  return randomSecret(20);
}

/** What an admin publishes: the TXT record and the file, for display. */
export function instructionsFor(domain: string, token: string, options: { httpScheme: string; httpPort: number }) {
  const port = (options.httpScheme === 'https' && options.httpPort === 443) || (options.httpScheme === 'http' && options.httpPort === 80) ? '' : `:${options.httpPort}`;
  return {
    txtName: domain,
    txtValue: `${TXT_PREFIX}${token}`,
    fileUrl: `${options.httpScheme}://${domain}${port}${WELL_KNOWN_PATH}`,
    fileContent: token,
  };
}

export interface DomainVerifierOptions {
  /** `ip[:port]` entries for `Resolver#setServers`; empty or absent: the system's resolvers. */
  dnsServers?: readonly string[] | undefined;
  httpScheme: 'https' | 'http';
  httpPort: number;
  timeoutMs: number;
  /** Let the HTTPS check reach loopback and private addresses (ALLOW_PRIVATE_NETWORK_UPSTREAMS). */
  allowPrivateNetwork: boolean;
}

const NOT_FOUND_CODES = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

/** Whether a published value (a TXT string, a line of the file) is this token. */
function holdsToken(value: string, token: string, prefixRequired: boolean): 'match' | 'other' | 'none' {
  const trimmed = value.trim();
  const hasPrefix = trimmed.toLowerCase().startsWith(TXT_PREFIX);
  if (prefixRequired && !hasPrefix) return 'none';
  const candidate = hasPrefix ? trimmed.slice(TXT_PREFIX.length).trim() : trimmed;
  if (!candidate) return 'none';
  return constantTimeEqual(candidate, token) ? 'match' : 'other';
}

export function createDomainVerifier(options: DomainVerifierOptions) {
  // Each try waits half the budget: two tries (a lost UDP datagram is retried once).
  const resolver = new Resolver({ timeout: Math.max(100, Math.floor(options.timeoutMs / 2)), tries: 2 });
  if (options.dnsServers?.length) resolver.setServers([...options.dnsServers]);

  async function checkDns(domain: string, token: string): Promise<CheckResult> {
    let records: string[][];
    try {
      records = await resolver.resolveTxt(domain);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown';
      if (NOT_FOUND_CODES.has(code)) return { ok: false, method: 'dns', problem: 'not_found', detail: `no TXT record ${TXT_PREFIX}… on ${domain}` };
      return { ok: false, method: 'dns', problem: 'dns_error', detail: `the DNS lookup of ${domain} failed (${code})` };
    }
    // A record's strings are one value (RFC 7208 §3.3 reads long TXT records the same way).
    const verdicts = records.map((chunks) => holdsToken(chunks.join(''), token, true));
    if (verdicts.includes('match')) return { ok: true, method: 'dns' };
    if (verdicts.includes('other')) return { ok: false, method: 'dns', problem: 'wrong_token', detail: `the TXT record on ${domain} holds another token` };
    return { ok: false, method: 'dns', problem: 'not_found', detail: `no TXT record ${TXT_PREFIX}… on ${domain}` };
  }

  /** The addresses the HTTPS check may connect to, from the same resolver. */
  async function addressesOf(domain: string): Promise<string[]> {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(domain), resolver.resolve6(domain)]);
    const all = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (!all.length) {
      const failure = [v4, v6].find((r): r is PromiseRejectedResult => r.status === 'rejected' && !NOT_FOUND_CODES.has((r.reason as { code?: string }).code ?? ''));
      if (failure) throw new Error(`the DNS lookup of ${domain} failed (${(failure.reason as { code?: string }).code ?? 'unknown'})`);
    }
    return all;
  }

  function get(url: URL, address: string, signal: AbortSignal): Promise<IncomingMessage> {
    const family = address.includes(':') ? 6 : 4;
    // Connect to the address checked above, whatever the name resolves to by now.
    const lookup: LookupFunction = (_host, lookupOptions, callback) => {
      if ((lookupOptions as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
      else callback(null, address, family);
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', lookup, signal, headers: { accept: 'text/plain', 'user-agent': 'Lanyard domain verification' } }, resolve);
      req.on('error', reject);
      req.end();
    });
  }

  async function readLimited(res: IncomingMessage): Promise<string | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > MAX_FILE_BYTES) {
        res.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function checkHttps(domain: string, token: string): Promise<CheckResult> {
    const fail = (problem: CheckProblem, detail: string): CheckResult => ({ ok: false, method: 'https', problem, detail });
    const signal = AbortSignal.timeout(options.timeoutMs);
    const origin = new URL(`${options.httpScheme}://${domain}:${options.httpPort}`);
    let url = new URL(WELL_KNOWN_PATH, origin);
    try {
      const addresses = await addressesOf(domain);
      if (!addresses.length) return fail('http_error', `${domain} has no address to fetch ${WELL_KNOWN_PATH} from`);
      const usable = options.allowPrivateNetwork ? addresses : addresses.filter(isPublicAddress);
      if (!usable.length) return fail('http_error', `${domain} resolves only to private addresses`);
      for (let redirects = 0; ; redirects++) {
        const res = await get(url, usable[0]!, signal);
        const location = res.headers.location;
        if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location) {
          res.resume();
          const next = new URL(location, url);
          // Same scheme, host and port only: a redirect elsewhere proves nothing about this domain.
          if (next.origin !== url.origin) return fail('http_error', `${url.href} redirects to another host`);
          if (redirects >= MAX_REDIRECTS) return fail('http_error', `${url.href} redirects too often`);
          url = next;
          continue;
        }
        if (res.statusCode === 404 || res.statusCode === 410) {
          res.resume();
          return fail('not_found', `${url.href} answered ${res.statusCode}`);
        }
        if (res.statusCode !== 200) {
          res.resume();
          return fail('http_error', `${url.href} answered ${res.statusCode ?? 'nothing'}`);
        }
        const body = await readLimited(res);
        if (body === undefined) return fail('http_error', `${url.href} is larger than ${MAX_FILE_BYTES} bytes`);
        const verdicts = body.split(/\r?\n/).map((line) => holdsToken(line, token, false));
        if (verdicts.includes('match')) return { ok: true, method: 'https' };
        return verdicts.includes('other') ? fail('wrong_token', `${url.href} holds another token`) : fail('not_found', `${url.href} is empty`);
      }
    } catch (err) {
      if (signal.aborted) return fail('http_error', `${url.href} did not answer within ${options.timeoutMs / 1000} s`);
      const e = err as { code?: string; message?: string };
      return fail('http_error', `${url.href} could not be fetched (${e.code ?? e.message ?? 'error'})`);
    }
  }

  return {
    checkDns,
    checkHttps,
    /**
     * Tries the DNS record, then the file; the first that holds the token proves ownership.
     * On failure, both results (the admin sees why each failed).
     */
    async check(domain: string, token: string): Promise<{ ok: true; method: VerificationMethod } | { ok: false; results: CheckResult[] }> {
      const dns = await checkDns(domain, token);
      if (dns.ok) return dns;
      const https = await checkHttps(domain, token);
      if (https.ok) return https;
      return { ok: false, results: [dns, https] };
    },
  };
}

export type DomainVerifier = ReturnType<typeof createDomainVerifier>;
