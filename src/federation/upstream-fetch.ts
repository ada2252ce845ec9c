import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Dispatcher } from 'undici';
import { isPublicAddress } from '../organizations/network-address.ts';

/**
 * Outbound requests to a company connector's OpenID provider (discovery, token, JWKS, userinfo).
 * Anyone with an account can create an organization and register a connector, so its issuer —
 * and every endpoint its discovery document names — is a URL an outsider chose: a request to it
 * must not reach this server's own network (SSRF). The rule is issue 12's (network-address.ts):
 * no loopback, private, link-local (cloud metadata), shared or reserved address.
 *
 * The check runs where the connection is made: an undici Agent whose `connect.lookup` resolves the
 * name and refuses it when any address is special-use, and connects to the addresses it checked —
 * so a name that resolves to a public address at one lookup and to 127.0.0.1 at the next (DNS
 * rebinding) is checked at each connection, never trusted from an earlier one. A literal address
 * (https://10.0.0.1, https://[::1]) is not looked up by the socket, so the fetch checks it itself.
 */
export interface UpstreamRules {
  /** Plain http issuers: tests and development only (the configuration refuses it in production). */
  allowHttp: boolean;
  /** Loopback and private upstreams: tests and development (ALLOW_PRIVATE_NETWORK_UPSTREAMS). */
  allowPrivateAddresses: boolean;
}

/** The rules of a configuration: http only outside production, private addresses by the setting. */
export function upstreamRulesOf(config: { env: string; allowPrivateNetworkUpstreams: boolean }): UpstreamRules {
  return { allowHttp: config.env !== 'production', allowPrivateAddresses: config.allowPrivateNetworkUpstreams };
}

/** A refused connection to a special-use address; `code` lets the console name the category. */
export class PrivateAddressError extends Error {
  readonly code = 'ERR_PRIVATE_ADDRESS';
  constructor(host: string) {
    super(`${host} is a private, loopback or link-local address`);
    this.name = 'PrivateAddressError';
  }
}

/** The host of a URL as an address when it is one (URL keeps IPv6 in brackets). */
function literalAddress(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) ? bare : undefined;
}

/**
 * Whether a URL may be registered as an upstream under `rules`: https (http only for this machine,
 * and only when allowed),
 * and, unless private addresses are allowed, a host that is neither a special-use literal address
 * (the WHATWG parser already turned 0x7f000001 and 127.1 into 127.0.0.1) nor `localhost`. Names
 * are checked again at each connection; this only refuses what is visibly wrong at once.
 */
export function acceptableUpstreamUrl(url: URL, rules: UpstreamRules): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  // Plain http only for a provider on this machine (a test's or a developer's), never in production.
  const local = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && rules.allowHttp && local)) return false;
  if (rules.allowPrivateAddresses) return true;
  if (host === 'localhost' || host.endsWith('.localhost')) return false;
  const literal = literalAddress(url.hostname);
  return literal === undefined || isPublicAddress(literal);
}

/** `connect.lookup`: resolve, refuse when any address is special-use, hand the socket what was checked. */
const checkedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return (callback as (e: NodeJS.ErrnoException) => void)(err);
    if (!addresses.length || addresses.some((a) => !isPublicAddress(a.address))) {
      return (callback as (e: Error) => void)(new PrivateAddressError(hostname));
    }
    if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

export type UpstreamFetch = (url: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * The fetch openid-client is given (its `customFetch`) for connector upstreams. Under rules that
 * allow private addresses (tests, development) it is the plain fetch.
 */
export function createUpstreamFetch(rules: UpstreamRules): UpstreamFetch {
  if (rules.allowPrivateAddresses) return (url, init) => globalThis.fetch(url, init);
  // undici (~25 MB once loaded) and the agent are made at the first upstream request (decision 0059).
  let dispatcher: Promise<Dispatcher> | undefined;
  return async (url, init) => {
    const target = new URL(url instanceof Request ? url.url : url);
    const literal = literalAddress(target.hostname);
    if (literal !== undefined && !isPublicAddress(literal)) throw new TypeError('fetch failed', { cause: new PrivateAddressError(target.hostname) });
    if (target.protocol !== 'https:' && !(target.protocol === 'http:' && rules.allowHttp)) throw new TypeError('fetch failed', { cause: new Error(`${target.protocol} is not allowed`) });
    dispatcher ??= import('undici').then(({ Agent }) => new Agent({ connect: { lookup: checkedLookup } }));
    return globalThis.fetch(url, { ...init, dispatcher: await dispatcher } as RequestInit);
  };
}

/**
 * What the console and the health line say when a request upstream failed: a category, never
 * the raw network error ("other side closed", "ECONNREFUSED" would make the console a port
 * scanner of whatever the upstream's name points at). The full error goes to the log only.
 */
export type UpstreamFailure = 'refused: private address' | 'unreachable' | 'not an OpenID provider';

/** The category of a failed request when the network failed it (undefined: the upstream answered). */
export function networkFailureOf(err: unknown): 'refused: private address' | 'unreachable' | undefined {
  let network = false;
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (e instanceof PrivateAddressError || code === 'ERR_PRIVATE_ADDRESS') return 'refused: private address';
    if (e instanceof TypeError && /fetch failed/.test(e.message)) network = true;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_\w+|ERR_SSL_\w+|ERR_TLS_\w+|\w*CERT\w*|ABORT_ERR)$/.test(code)) network = true;
    if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) network = true;
  }
  return network ? 'unreachable' : undefined;
}

/** Why discovery failed: the network's category, or the upstream answered but is no OpenID provider. */
export function upstreamFailureOf(err: unknown): UpstreamFailure {
  return networkFailureOf(err) ?? 'not an OpenID provider';
}
