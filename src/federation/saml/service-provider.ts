import { randomBytes } from 'node:crypto';
import { SAML, SamlStatusError, ValidateInResponseTo, type CacheProvider, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { constantTimeEqual } from '../../shared/crypto.ts';
import type { SamlConnector } from './config.ts';
import { SamlRefusal } from './refusal.ts';
import { buildSpMetadata } from './sp-metadata.ts';
import { NS, XmlRefused, childrenNamed, parseStrictXml } from './xml.ts';
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
 * Response's Destination and Status, and one-time use of each assertion id.
 */
export interface SamlClaims {
  /** The NameID: the IdP's identifier of the person. */
  subject: string;
  /** The address the IdP asserts (the configured attribute, else an emailAddress-format NameID). */
  email: string | undefined;
  /** True when there is an email: the organization's own IdP asserted it. */
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
}

const EMAIL_NAME_ID = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
/** SAML 2.0 Bindings §3.4.3, §3.5.3: RelayState MUST NOT exceed 80 bytes. */
const MAX_RELAY_STATE_BYTES = 80;
/** A response with an encrypted assertion and a certificate chain is tens of kilobytes; 256 KiB is ample. */
export const MAX_SAML_RESPONSE_CHARS = 256 * 1024;

/** node-saml consults a cache only for InResponseTo, which we check ourselves (never): an inert one. */
const noCache: CacheProvider = {
  saveAsync: async () => null,
  getAsync: async () => null,
  removeAsync: async () => null,
};

export function createSamlConnector(deps: SamlSettings) {
  const issuer = deps.issuer.replace(/\/+$/, '');
  const skewMs = (deps.skewSeconds ?? 60) * 1000;
  const maxAgeMs = (deps.maxAssertionAgeSeconds ?? 600) * 1000;

  const spEntityId = (connectorId: string) => `${issuer}/saml/${encodeURIComponent(connectorId)}/metadata`;
  const acsUrl = (connectorId: string) => `${issuer}/saml/${encodeURIComponent(connectorId)}/acs`;
  const nameIdFormat = (connector: SamlConnector) => (connector.config.emailAttribute ? undefined : EMAIL_NAME_ID);

  function keysOf(connector: SamlConnector) {
    const keys = connector.secrets.spKeys;
    if (!keys.length) throw new Error(`SAML connector ${connector.id} has no service provider key`);
    return keys;
  }

  function samlFor(connector: SamlConnector, extra: Partial<SamlConfig>): SAML {
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

  /** Runs node-saml with one of our keys; the next key is tried only when decryption failed. */
  async function verifyWithKeys(connector: SamlConnector, samlResponse: string, encrypted: boolean): Promise<Profile> {
    const keys = keysOf(connector);
    let lastDecryptionError: unknown;
    for (const key of encrypted ? keys : keys.slice(0, 1)) {
      try {
        const { profile } = await samlFor(connector, { decryptionPvk: key.privateKeyPem }).validatePostResponseAsync({ SAMLResponse: samlResponse });
        if (!profile) throw new SamlRefusal('sso.saml_invalid', 'not a login response');
        return profile;
      } catch (err) {
        if (encrypted && isDecryptionFailure(err)) {
          lastDecryptionError = err;
          continue;
        }
        throw refusalFrom(err);
      }
    }
    throw new SamlRefusal('sso.saml_invalid', 'the encrypted assertion opens with none of our keys', { cause: lastDecryptionError });
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
      // xs:ID: an NCName, so it starts with a letter or underscore; 160 random bits.
      const requestId = `_${randomBytes(20).toString('hex')}`;
      const saml = samlFor(connector, {
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
     * connector allows it).
     */
    async finish(connector: SamlConnector, body: { SAMLResponse: string; RelayState?: string }, expected: { requestId?: string }): Promise<SamlClaims> {
      const now = deps.clock();
      const encoded = typeof body?.SAMLResponse === 'string' ? body.SAMLResponse.replace(/\s+/g, '') : '';
      if (!encoded) throw new SamlRefusal('sso.saml_invalid', 'no SAMLResponse');
      if (encoded.length > MAX_SAML_RESPONSE_CHARS) throw new SamlRefusal('sso.saml_invalid', 'SAMLResponse too large');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new SamlRefusal('sso.saml_invalid', 'SAMLResponse is not base64');
      const xml = Buffer.from(encoded, 'base64').toString('utf8');

      // The envelope, read strictly before anything else touches it.
      let response: Element;
      try {
        response = parseStrictXml(xml).documentElement!;
      } catch (err) {
        throw new SamlRefusal('sso.saml_invalid', err instanceof XmlRefused ? err.message : 'unreadable XML');
      }
      if (response.namespaceURI !== NS.protocol || response.localName !== 'Response') throw new SamlRefusal('sso.saml_invalid', 'not a samlp:Response');
      const status = childrenNamed(response, NS.protocol, 'Status')[0];
      const statusCode = status ? childrenNamed(status, NS.protocol, 'StatusCode')[0]?.getAttribute('Value') : undefined;
      if (statusCode !== SUCCESS) {
        const second = status ? childrenNamed(childrenNamed(status, NS.protocol, 'StatusCode')[0] ?? status, NS.protocol, 'StatusCode')[0]?.getAttribute('Value') : undefined;
        throw new SamlRefusal('sso.saml_idp_error', `status ${statusCode ?? 'missing'}${second ? ` / ${second}` : ''}`);
      }
      // Destination (Core §3.2.2; Bindings §3.5.5.2): when the IdP names one, it must be us.
      const destination = response.getAttribute('Destination');
      if (destination && destination !== acsUrl(connector.id)) throw new SamlRefusal('sso.saml_invalid', 'Destination is not our ACS URL');
      const responseIssuer = childrenNamed(response, NS.assertion, 'Issuer')[0]?.textContent?.trim();
      if (responseIssuer !== undefined && responseIssuer !== connector.config.idpEntityId) throw new SamlRefusal('sso.saml_invalid', 'Response Issuer is not the connector\'s IdP');
      const assertions = childrenNamed(response, NS.assertion, 'Assertion').length;
      const encrypted = childrenNamed(response, NS.assertion, 'EncryptedAssertion').length;
      if (assertions + encrypted !== 1) throw new SamlRefusal('sso.saml_invalid', `${assertions + encrypted} assertions (exactly one expected)`);

      // Signature, decryption, audience: node-saml, which returns the signed assertion only.
      const profile = await verifyWithKeys(connector, encoded, encrypted === 1);
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

      // InResponseTo: the signed one, in SubjectConfirmationData (Profiles §4.1.4.2), must name the
      // request this browser made. The Response's own attribute may be unsigned: it must agree.
      const responseInResponseTo = response.getAttribute('InResponseTo') || undefined;
      const inResponseTo = confirmation.inResponseTo;
      if (responseInResponseTo !== undefined && responseInResponseTo !== inResponseTo) throw new SamlRefusal('sso.saml_invalid', 'InResponseTo of the Response and of the assertion differ');
      if (inResponseTo === undefined) {
        // IdP-initiated SSO (Profiles §4.1.5): off unless the admin turned it on for this connector.
        if (!connector.config.idpInitiated) throw new SamlRefusal('sso.saml_unsolicited', 'no InResponseTo and IdP-initiated login is off');
      } else if (expected.requestId === undefined || !constantTimeEqual(inResponseTo, expected.requestId)) {
        throw new SamlRefusal('sso.saml_wrong_request', 'InResponseTo is not the request this browser made');
      }

      // One use per assertion id (Profiles §4.1.4.5), remembered while it could still be accepted.
      const acceptableUntil = Math.min(
        confirmation.notOnOrAfter!,
        facts.notOnOrAfter ?? Number.POSITIVE_INFINITY,
        facts.issueInstant + maxAgeMs,
      ) + skewMs;
      if (!(await deps.seen.remember(connector.id, facts.id, new Date(acceptableUntil)))) throw new SamlRefusal('sso.saml_replay', 'assertion id already used');

      const attribute = (name: string | undefined) => (name ? facts.attributes.get(name)?.find((v) => v.trim() !== '')?.trim() : undefined);
      const email = connector.config.emailAttribute
        ? attribute(connector.config.emailAttribute)
        : facts.nameIdFormat === EMAIL_NAME_ID ? facts.nameId : undefined;
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

/** xml-encryption's and OpenSSL's messages when the key does not open the encrypted key. */
function isDecryptionFailure(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /decrypt|oaep|rsa routines|padding/i.test(message);
}

/** node-saml's errors as refusals with a reason of our own wording (no XML, no key, no value). */
function refusalFrom(err: unknown): SamlRefusal {
  if (err instanceof SamlRefusal) return err;
  if (err instanceof SamlStatusError) return new SamlRefusal('sso.saml_idp_error', 'IdP status not Success', { cause: err });
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
