import { randomBytes } from 'node:crypto';
import type { CacheProvider, Profile, SAML, SamlConfig } from '@node-saml/node-saml';
import { constantTimeEqual } from '../../shared/crypto.ts';
import { normalizeEmail } from '../../identity/email-address.ts';
import type { SamlConnector, SpKeyPair } from './config.ts';
import { SamlRefusal } from './refusal.ts';
import { buildSpMetadata } from './sp-metadata.ts';
import { NS, XmlRefused, childrenNamed } from './xml.ts';
import { parseBoundedXml } from './xml-limits.ts';
import { checkSignatureAlgorithms } from './algorithms.ts';
import { decryptAssertion } from './decrypt.ts';
import { assertionFacts, type AssertionFacts } from './assertion.ts';

/**
 * The service provider half of a company's SAML 2.0 connector (issue 13; decision 0036), on
 * `@node-saml/node-saml`: it sends signed AuthnRequests (HTTP-Redirect binding) and validates the
 * Response the IdP posts back (HTTP-POST binding) down to claims the login strategy can use.
 *
 * node-saml verifies XML signatures (the response's or the assertion's, against the connector's
 * one or two IdP certificates, on the signed bytes only), decrypts EncryptedAssertion with our
 * key and checks the audience. Everything node-saml 5 leaves to its caller is checked here, on
 * the signed assertion it hands back: the issuer, the bearer SubjectConfirmation's Recipient and
 * window, InResponseTo against the request this browser made, the Conditions window (with our
 * injectable clock: node-saml's own time checks read the system clock and are turned off), the
 * Response's Destination and Status, and one-time use of each assertion id and of each request id.
 *
 * Before any of that, on unauthenticated input: the response's shape is bounded
 * (`xml-limits.ts`), its signature and encryption algorithms are on our lists (`algorithms.ts`),
 * and an encrypted assertion is opened here first (`decrypt.ts`) so that its plaintext is held
 * to the same bounds before node-saml parses and verifies it.
 */
export interface SamlClaims {
  /** The NameID: the IdP's identifier of the person. */
  subject: string;
  /**
   * The address the IdP asserts (the configured attribute, else an emailAddress-format NameID),
   * normalized (`normalizeEmail`: trimmed, NFC, lower-case); undefined unless it is exactly one
   * valid address.
   */
  email: string | undefined;
  /**
   * True when there is an email. It means only that this connector's IdP signed the address —
   * NOT that the address belongs to the IdP's organization: any IdP can assert any address on any
   * domain. The caller MUST accept the address only on one of the connector's linked, verified
   * domains (decision 0033; src/federation/connector-login.ts refuses `sso.domain_not_linked`)
   * before it matches or creates an account by it.
   */
  emailVerified: boolean;
  name?: string;
  /** The AuthnStatement's AuthnInstant (seconds): when the person last proved themselves upstream. */
  authTime?: number;
  sessionIndex?: string;
  assertionId: string;
}

/** The one-time-use store of assertion ids (backed by `saml_assertions_seen`, migration 0021). */
export interface SeenAssertions {
  /** Records the id; false when it was already recorded for this connector and is not expired (a replay). */
  remember(connectorId: string, assertionId: string, notOnOrAfter: Date): Promise<boolean>;
}

export interface SamlSettings {
  issuer: string;
  /** Milliseconds since the epoch. */
  clock: () => number;
  seen: SeenAssertions;
  /** Clock skew allowed between us and the IdP on every time check (seconds). */
  skewSeconds?: number;
  /** How long after its IssueInstant an assertion is still accepted, whatever it says (seconds). */
  maxAssertionAgeSeconds?: number;
  /**
   * How long after `start` a request may be answered (seconds; default an hour). The request id
   * carries its time, and a consumed request id is remembered this long.
   */
  requestLifetimeSeconds?: number;
}

/** What the caller knows of the login this browser started (all optional: see `finish`). */
export interface SamlExpectations {
  /** The id `start` returned to this browser; absent when it started none (IdP-initiated only). */
  requestId?: string;
  /**
   * A re-authentication (`start` with `fresh`, ForceAuthn): the person must have proved
   * themselves at the IdP at most this long ago (AuthnInstant, with the skew). Without it, an
   * IdP that ignores ForceAuthn and answers from an old session is noticed by `authTime` only.
   */
  maxAuthAgeSeconds?: number;
}

const EMAIL_NAME_ID = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
/** SAML 2.0 Bindings §3.4.3, §3.5.3: RelayState MUST NOT exceed 80 bytes. */
const MAX_RELAY_STATE_BYTES = 80;
/**
 * Base64 characters of one SAMLResponse. A signed and encrypted response with certificates and a
 * group list of a hundred entries is 20–30 KiB; 64 KiB is ample, and what we parse at all is
 * small (the shape bounds of xml-limits.ts do the rest).
 */
export const MAX_SAML_RESPONSE_CHARS = 64 * 1024;

/** node-saml consults a cache only for InResponseTo, which we check ourselves (never): an inert one. */
const noCache: CacheProvider = {
  saveAsync: async () => null,
  getAsync: async () => null,
  removeAsync: async () => null,
};

/**
 * node-saml and what it brings (xml-crypto, xml2js, xmlbuilder, xpath: ~20 MB of an idle process)
 * are loaded at the first SAML request: most deployments have no SAML connector (decision 0059).
 */
type NodeSaml = typeof import('@node-saml/node-saml');
let nodeSamlLoading: Promise<NodeSaml> | undefined;
let nodeSaml: NodeSaml | undefined;
const loadNodeSaml = () => (nodeSamlLoading ??= import('@node-saml/node-saml').then((m) => (nodeSaml = m)));

export function createSamlConnector(deps: SamlSettings) {
  const issuer = deps.issuer.replace(/\/+$/, '');
  const skewMs = (deps.skewSeconds ?? 60) * 1000;
  const maxAgeMs = (deps.maxAssertionAgeSeconds ?? 600) * 1000;
  const requestLifetimeMs = (deps.requestLifetimeSeconds ?? 3600) * 1000;

  const spEntityId = (connectorId: string) => `${issuer}/saml/${encodeURIComponent(connectorId)}/metadata`;
  const acsUrl = (connectorId: string) => `${issuer}/saml/${encodeURIComponent(connectorId)}/acs`;
  const nameIdFormat = (connector: SamlConnector) => (connector.config.emailAttribute ? undefined : EMAIL_NAME_ID);

  function keysOf(connector: SamlConnector) {
    const keys = connector.secrets.spKeys;
    if (!keys.length) throw new Error(`SAML connector ${connector.id} has no service provider key`);
    return keys;
  }

  async function samlFor(connector: SamlConnector, extra: Partial<SamlConfig>): Promise<SAML> {
    const { SAML, ValidateInResponseTo } = await loadNodeSaml();
    return new SAML({
      issuer: spEntityId(connector.id),
      callbackUrl: acsUrl(connector.id),
      audience: spEntityId(connector.id),
      idpCert: connector.config.idpCertificates,
      idpIssuer: connector.config.idpEntityId,
      // A signature on the Response or on the assertion: either one covers the assertion
      // (SAML 2.0 Profiles §4.1.3.5); node-saml refuses a response with neither.
      wantAssertionsSigned: false,
      wantAuthnResponseSigned: false,
      // Time windows and InResponseTo are checked below, with the injected clock and per browser.
      acceptedClockSkewMs: -1,
      validateInResponseTo: ValidateInResponseTo.never,
      cacheProvider: noCache,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      identifierFormat: nameIdFormat(connector) ?? null,
      // The company's IdP decides how people prove themselves (its own two-step verification):
      // asking for a context class would make some IdPs refuse stronger methods.
      disableRequestedAuthnContext: true,
      ...extra,
    });
  }

  /**
   * node-saml verifies the signature and, for an encrypted assertion, decrypts it again with the
   * key that opened it here (decrypt.ts: same library, same bytes, same plaintext).
   */
  async function verify(connector: SamlConnector, samlResponse: string, key: SpKeyPair): Promise<Profile> {
    try {
      const { profile } = await (await samlFor(connector, { decryptionPvk: key.privateKeyPem })).validatePostResponseAsync({ SAMLResponse: samlResponse });
      if (!profile) throw new SamlRefusal('sso.saml_invalid', 'not a login response');
      return profile;
    } catch (err) {
      throw refusalFrom(err);
    }
  }

  return {
    spEntityId,
    acsUrl,
    metadataUrl: spEntityId,

    /** The SP metadata the company's IdP imports: at the stable URL `metadataUrl(connector.id)`. */
    metadata(connector: SamlConnector): string {
      return buildSpMetadata({ entityId: spEntityId(connector.id), acsUrl: acsUrl(connector.id), keys: keysOf(connector), nameIdFormat: nameIdFormat(connector) });
    },

    /**
     * A signed AuthnRequest (HTTP-Redirect binding, SAML 2.0 Bindings §3.4.4.1: the query is
     * signed with the first SP key, RSA-SHA256). `fresh`: ForceAuthn, so the IdP makes the person
     * sign in now instead of answering from its session (a re-authentication here). `relayState`
     * comes back untouched with the response; 80 bytes at most. Keep `requestId` bound to the
     * browser (the flow record) and pass it to `finish`.
     */
    async start(connector: SamlConnector, opts: { fresh?: boolean; relayState: string }): Promise<{ redirectUrl: string; requestId: string }> {
      if (Buffer.byteLength(opts.relayState, 'utf8') > MAX_RELAY_STATE_BYTES) throw new RangeError('RelayState is longer than 80 bytes (SAML 2.0 Bindings §3.4.3)');
      // xs:ID: an NCName, so it starts with a letter or underscore; 160 random bits after the
      // time it was made (base 36), which `finish` reads to refuse answers to stale requests.
      const requestId = `_${deps.clock().toString(36)}.${randomBytes(20).toString('hex')}`;
      const saml = await samlFor(connector, {
        entryPoint: connector.config.ssoUrl,
        privateKey: keysOf(connector)[0]!.privateKeyPem,
        forceAuthn: opts.fresh === true,
        generateUniqueId: () => requestId,
      });
      const redirectUrl = await saml.getAuthorizeUrlAsync(opts.relayState, undefined, {});
      return { redirectUrl, requestId };
    },

    /**
     * Validates the posted response and returns its claims, or throws a SamlRefusal (stable
     * code, reason for the log; never a crash, never the assertion in the message).
     * `expected.requestId`: the id `start` returned to this browser; absent when this browser
     * started no login (then only an IdP-initiated response can be accepted, and only when the
     * connector allows it). A request id is consumed by the first response accepted for it.
     * `expected.maxAuthAgeSeconds`: for a re-authentication (see SamlExpectations).
     *
     * The claims' email is NOT domain-checked here: see `SamlClaims.emailVerified`.
     */
    async finish(connector: SamlConnector, body: { SAMLResponse: string; RelayState?: string }, expected: SamlExpectations): Promise<SamlClaims> {
      const now = deps.clock();
      const encoded = typeof body?.SAMLResponse === 'string' ? body.SAMLResponse.replace(/\s+/g, '') : '';
      if (!encoded) throw new SamlRefusal('sso.saml_invalid', 'no SAMLResponse');
      if (encoded.length > MAX_SAML_RESPONSE_CHARS) throw new SamlRefusal('sso.saml_invalid', 'SAMLResponse too large');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new SamlRefusal('sso.saml_invalid', 'SAMLResponse is not base64');
      const xml = Buffer.from(encoded, 'base64').toString('utf8');

      // The envelope, read strictly before anything else touches it: well-formed, no DTD, within
      // the shape bounds (the libraries below are slow on wide or deep trees), only our algorithms.
      let response: Element;
      try {
        const doc = parseBoundedXml(xml);
        checkSignatureAlgorithms(doc);
        response = doc.documentElement!;
      } catch (err) {
        throw new SamlRefusal('sso.saml_invalid', err instanceof XmlRefused ? err.message : 'unreadable XML');
      }
      if (response.namespaceURI !== NS.protocol || response.localName !== 'Response') throw new SamlRefusal('sso.saml_invalid', 'not a samlp:Response');
      // Status is required (Core §3.2.2): without one this is no answer of an IdP at all.
      const status = childrenNamed(response, NS.protocol, 'Status')[0];
      const statusCode = status ? childrenNamed(status, NS.protocol, 'StatusCode')[0]?.getAttribute('Value') : undefined;
      if (!statusCode) throw new SamlRefusal('sso.saml_invalid', 'no Status');
      if (statusCode !== SUCCESS) {
        const second = childrenNamed(childrenNamed(status!, NS.protocol, 'StatusCode')[0]!, NS.protocol, 'StatusCode')[0]?.getAttribute('Value');
        throw new SamlRefusal('sso.saml_idp_error', `status ${statusCode}${second ? ` / ${second}` : ''}`);
      }
      // Destination (Core §3.2.2; Bindings §3.5.5.2): when the IdP names one, it must be us.
      const destination = response.getAttribute('Destination');
      if (destination && destination !== acsUrl(connector.id)) throw new SamlRefusal('sso.saml_invalid', 'Destination is not our ACS URL');
      const responseIssuer = childrenNamed(response, NS.assertion, 'Issuer')[0]?.textContent?.trim();
      if (responseIssuer !== undefined && responseIssuer !== connector.config.idpEntityId) throw new SamlRefusal('sso.saml_invalid', 'Response Issuer is not the connector\'s IdP');
      // Exactly one assertion, counted by local name as node-saml counts them (any namespace).
      const candidates: Element[] = [];
      for (let node = response.firstChild; node; node = node.nextSibling) {
        if (node.nodeType === 1 && ['Assertion', 'EncryptedAssertion'].includes((node as Element).localName ?? '')) candidates.push(node as Element);
      }
      if (candidates.length !== 1 || candidates[0]!.namespaceURI !== NS.assertion) throw new SamlRefusal('sso.saml_invalid', `${candidates.length} assertions (exactly one SAML assertion expected)`);

      // An encrypted assertion is opened here first, so that what node-saml will parse and verify
      // is held to the same bounds and algorithms (anyone can encrypt to our public certificate).
      let key = keysOf(connector)[0]!;
      if (candidates[0]!.localName === 'EncryptedAssertion') {
        try {
          const opened = await decryptAssertion(candidates[0]!, keysOf(connector));
          key = opened.key;
          const inner = parseBoundedXml(opened.xml);
          if (inner.documentElement!.namespaceURI !== NS.assertion || inner.documentElement!.localName !== 'Assertion') throw new XmlRefused('the encrypted content is not a saml:Assertion');
          checkSignatureAlgorithms(inner);
        } catch (err) {
          throw new SamlRefusal('sso.saml_invalid', `encrypted assertion refused: ${err instanceof XmlRefused ? err.message : 'could not be opened'}`);
        }
      }

      // Signature, decryption, audience: node-saml, which returns the signed assertion only.
      const profile = await verify(connector, encoded, key);
      const parsed = profile.getAssertion?.();
      if (!parsed) throw new SamlRefusal('sso.saml_invalid', 'no signed assertion');
      let facts: AssertionFacts;
      try {
        facts = assertionFacts(parsed);
      } catch (err) {
        throw new SamlRefusal('sso.saml_invalid', (err as Error).message);
      }

      // Issuer of the assertion (Profiles §4.1.4.2): the connector's IdP and no other.
      if (facts.issuer !== connector.config.idpEntityId) throw new SamlRefusal('sso.saml_invalid', 'assertion Issuer is not the connector\'s IdP');
      // Audience (Core §2.5.1.4): node-saml checked it; checked again here so that no option can lose it.
      if (!facts.audiences.length || !facts.audiences.every((list) => list.includes(spEntityId(connector.id)))) throw new SamlRefusal('sso.saml_invalid', 'audience is not our entity id');

      // A bearer SubjectConfirmation addressed to our ACS (Profiles §4.1.4.2, §4.1.4.3).
      const confirmations = facts.confirmations.filter((c) => c.method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer');
      if (!confirmations.length) throw new SamlRefusal('sso.saml_invalid', 'no bearer SubjectConfirmation');
      const addressed = confirmations.filter((c) => c.recipient === acsUrl(connector.id));
      if (!addressed.length) throw new SamlRefusal('sso.saml_invalid', 'Recipient is not our ACS URL');
      const usable = addressed.filter((c) => c.notOnOrAfter !== undefined && now - skewMs < c.notOnOrAfter && (c.notBefore === undefined || now + skewMs >= c.notBefore));
      if (!usable.length) throw new SamlRefusal('sso.saml_expired', 'SubjectConfirmationData is outside its validity window');
      const confirmation = usable[0]!;

      // Conditions (Core §2.5.1.2) and the assertion's age.
      if (facts.notBefore !== undefined && now + skewMs < facts.notBefore) throw new SamlRefusal('sso.saml_expired', 'Conditions NotBefore is in the future');
      if (facts.notOnOrAfter !== undefined && now - skewMs >= facts.notOnOrAfter) throw new SamlRefusal('sso.saml_expired', 'Conditions NotOnOrAfter has passed');
      if (now - skewMs >= facts.issueInstant + maxAgeMs) throw new SamlRefusal('sso.saml_expired', 'assertion issued too long ago');
      if (now + skewMs < facts.issueInstant) throw new SamlRefusal('sso.saml_expired', 'assertion issued in the future');
      // AuthnInstant (Core §2.7.2): never in the future (it becomes auth_time, which max_age
      // checks downstream trust); and within maxAuthAgeSeconds when the caller asked for a fresh
      // sign-in, since an IdP may ignore ForceAuthn and answer from its session (Core §3.4.1).
      if (facts.authnInstant !== undefined && now + skewMs < facts.authnInstant) throw new SamlRefusal('sso.saml_expired', 'AuthnInstant is in the future');
      if (expected.maxAuthAgeSeconds !== undefined) {
        if (facts.authnInstant === undefined) throw new SamlRefusal('sso.saml_expired', 'no AuthnInstant for a re-authentication');
        if (now - skewMs > facts.authnInstant + expected.maxAuthAgeSeconds * 1000) throw new SamlRefusal('sso.saml_expired', 'AuthnInstant older than the re-authentication allows (ForceAuthn not honoured)');
      }

      // InResponseTo: the signed one, in SubjectConfirmationData (Profiles §4.1.4.2), must name the
      // request this browser made. The Response's own attribute may be unsigned: it must agree.
      const responseInResponseTo = response.getAttribute('InResponseTo') || undefined;
      const inResponseTo = confirmation.inResponseTo;
      if (responseInResponseTo !== undefined && responseInResponseTo !== inResponseTo) throw new SamlRefusal('sso.saml_invalid', 'InResponseTo of the Response and of the assertion differ');
      let requestUntil: number | undefined;
      if (inResponseTo === undefined) {
        // IdP-initiated SSO (Profiles §4.1.5): off unless the admin turned it on for this connector.
        if (!connector.config.idpInitiated) throw new SamlRefusal('sso.saml_unsolicited', 'no InResponseTo and IdP-initiated login is off');
      } else if (expected.requestId === undefined || !constantTimeEqual(inResponseTo, expected.requestId)) {
        throw new SamlRefusal('sso.saml_wrong_request', 'InResponseTo is not the request this browser made');
      } else {
        // A request made by `start` carries its time; an id of another form (made elsewhere) is
        // given the whole lifetime from now.
        const made = /^_([0-9a-z]{1,11})\./.exec(expected.requestId);
        const madeAt = made ? parseInt(made[1]!, 36) : now;
        if (now - skewMs > madeAt + requestLifetimeMs) throw new SamlRefusal('sso.saml_expired', 'the request was made too long ago');
        requestUntil = madeAt + requestLifetimeMs + skewMs;
      }

      // One use per assertion id (Profiles §4.1.4.5), remembered while it could still be accepted.
      const acceptableUntil = Math.min(
        confirmation.notOnOrAfter!,
        facts.notOnOrAfter ?? Number.POSITIVE_INFINITY,
        facts.issueInstant + maxAgeMs,
      ) + skewMs;
      if (!(await deps.seen.remember(connector.id, facts.id, new Date(acceptableUntil)))) throw new SamlRefusal('sso.saml_replay', 'assertion id already used');
      // One accepted response per request: a second assertion answering the same AuthnRequest
      // (the IdP asked twice, or one captured from another tab) is refused. The key cannot meet an
      // assertion id: those are xs:ID, which has no colon.
      if (requestUntil !== undefined && !(await deps.seen.remember(connector.id, `request:${inResponseTo}`, new Date(Math.max(requestUntil, acceptableUntil))))) {
        throw new SamlRefusal('sso.saml_replay', 'the request was already answered');
      }

      // The first non-empty value, in the IdP's order; an email only when it is one valid address.
      const attribute = (name: string | undefined) => (name ? facts.attributes.get(name)?.find((v) => v.trim() !== '')?.trim() : undefined);
      const email = normalizeEmail(connector.config.emailAttribute
        ? attribute(connector.config.emailAttribute)
        : facts.nameIdFormat === EMAIL_NAME_ID ? facts.nameId : undefined);
      const name = attribute(connector.config.nameAttribute);
      return {
        subject: facts.nameId,
        email,
        emailVerified: email !== undefined,
        ...(name !== undefined ? { name } : {}),
        ...(facts.authnInstant !== undefined ? { authTime: Math.floor(facts.authnInstant / 1000) } : {}),
        ...(facts.sessionIndex !== undefined ? { sessionIndex: facts.sessionIndex } : {}),
        assertionId: facts.id,
      };
    },
  };
}

export type SamlServiceProvider = ReturnType<typeof createSamlConnector>;

/** node-saml's errors as refusals with a reason of our own wording (no XML, no key, no value). */
function refusalFrom(err: unknown): SamlRefusal {
  if (err instanceof SamlRefusal) return err;
  // Only node-saml throws its errors, so it is loaded whenever one is here.
  if (nodeSaml && err instanceof nodeSaml.SamlStatusError) return new SamlRefusal('sso.saml_idp_error', 'IdP status not Success', { cause: err });
  const message = err instanceof Error ? err.message : '';
  const reasons: [RegExp, string][] = [
    [/audience/i, 'audience is not our entity id'],
    [/multiple assertions|more than one element|Referenced node|Too many signatures|too many transforms|ref URI/i, 'signature structure refused (possible wrapping)'],
    [/signature/i, 'no valid signature from the connector\'s IdP certificates'],
    [/decrypt|EncryptedAssertion/i, 'encrypted assertion could not be opened'],
    [/Missing SAML assertion/i, 'no assertion'],
    [/issuer/i, 'wrong issuer'],
  ];
  const reason = reasons.find(([pattern]) => pattern.test(message))?.[1] ?? 'response refused by the SAML library';
  return new SamlRefusal('sso.saml_invalid', reason, { cause: err });
}
