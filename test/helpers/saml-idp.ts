import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import * as samlify from 'samlify';
import { generateSpKeys } from '../../src/federation/saml/sp-keys.ts';
import type { SpKeyPair } from '../../src/federation/saml/config.ts';

/**
 * A company's SAML 2.0 identity provider for the tests: samlify acting as the IdP, on a real
 * HTTP server at 127.0.0.1, with its own RSA keys. It imports Lanyard's SP metadata
 * (`trustSp`), verifies the signed AuthnRequests Lanyard redirects to it (HTTP-Redirect binding,
 * signature over the query, SAML 2.0 Bindings §3.4.4.1) and answers with a signed (optionally
 * encrypted) Response in an auto-posting form, as a real IdP does.
 *
 * `respond()` builds a Response directly, with any field the test wants wrong (audience,
 * recipient, times, issuer, InResponseTo, which part is signed, with which key).
 */
export interface SamlUser {
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string>;
}

export interface ResponseOptions {
  user?: SamlUser;
  /** The AuthnRequest ID answered; null: unsolicited (IdP-initiated). */
  inResponseTo: string | null;
  /** What is signed: the assertion (default), the whole response, or both. */
  sign?: 'assertion' | 'response' | 'both';
  /** Encrypt the assertion to this SP certificate (sign-then-encrypt, as IdPs do by default). */
  encryptTo?: string;
  /** Signing key other than the IdP's current one (an attacker's, or the previous one). */
  signWith?: SpKeyPair;
  issuer?: string;
  assertionIssuer?: string;
  audience?: string;
  recipient?: string;
  destination?: string | null;
  /** Milliseconds since the epoch, for every time field (defaults: now). */
  issueInstant?: number;
  notBefore?: number;
  notOnOrAfter?: number;
  subjectNotOnOrAfter?: number;
  authnInstant?: number;
  assertionId?: string;
  statusCode?: string;
  sessionIndex?: string;
}

const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const esc = (value: string) => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const certificateBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
const iso = (ms: number) => new Date(ms).toISOString();

// The IdP parses Lanyard's AuthnRequest; schema validation is not what these tests are about
// (node-saml's XML is checked by the request being accepted and answered), so any XML passes.
samlify.setSchemaValidator({ validate: async () => 'skipped' });

export async function startSamlIdp(options: { entityId?: string; host?: string } = {}) {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // `host: 'localhost'` for browser tests: another site than Lanyard's 127.0.0.1, so the IdP's post
  // to the ACS is cross-site as in production (no SameSite=Lax cookie comes with it).
  const base = `http://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  const entityId = options.entityId ?? `${base}/idp`;
  const ssoUrl = `${base}/sso`;
  let signing: SpKeyPair = generateSpKeys(new Date());
  let spMetadata: string | undefined;
  let current: SamlUser | undefined;
  /** The AuthnRequests received, verified and parsed, oldest first. */
  const requests: { id: string; forceAuthn: boolean; relayState: string | undefined; acsUrl: string | undefined }[] = [];
  /** How each GET /sso ended: 200 (answered) or the error that refused it. */
  const outcomes: string[] = [];

  function idpEntity(key: SpKeyPair, encrypt: boolean) {
    return samlify.IdentityProvider({
      entityID: entityId,
      signingCert: key.certificatePem,
      privateKey: key.privateKeyPem,
      wantAuthnRequestsSigned: true,
      isAssertionEncrypted: encrypt,
      requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      dataEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
      keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: ssoUrl }],
      singleLogoutService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/slo` }],
      nameIDFormat: [EMAIL_FORMAT],
    } as Parameters<typeof samlify.IdentityProvider>[0]);
  }

  /** The SP as the IdP knows it, from Lanyard's metadata, adjusted to what this response needs. */
  function spEntity(sign: 'assertion' | 'response' | 'both', encryptTo?: string, signingCert?: string) {
    if (!spMetadata) throw new Error('trustSp() first');
    const doc = new DOMParser().parseFromString(spMetadata, 'text/xml');
    const descriptor = doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'SPSSODescriptor')[0]!;
    descriptor.setAttribute('WantAssertionsSigned', sign === 'response' ? 'false' : 'true');
    // samlify encrypts to one certificate: keep the chosen one among the published encryption keys.
    // samlify verifies a redirect signature with one certificate: keep one signing key too.
    const keep = { encryption: encryptTo && certificateBody(encryptTo), signing: signingCert && certificateBody(signingCert) };
    for (const key of Array.from(doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor'))) {
      const use = key.getAttribute('use') as 'encryption' | 'signing';
      const cert = key.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]?.textContent?.replace(/\s/g, '');
      if (use === 'encryption' ? cert !== keep.encryption : keep.signing && cert !== keep.signing) key.parentNode!.removeChild(key);
    }
    if (encryptTo && !Array.from(doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor')).some((k) => k.getAttribute('use') === 'encryption')) {
      throw new Error('encryptTo: that certificate is not in the SP metadata the IdP trusts');
    }
    return samlify.ServiceProvider({ metadata: new XMLSerializer().serializeToString(doc), wantMessageSigned: sign !== 'assertion' });
  }

  function template(o: ResponseOptions, now: number): string {
    const user = o.user ?? current;
    if (!user) throw new Error('signInAs() first');
    const sp = spEntity('assertion').entityMeta;
    const spEntityId = sp.getEntityID();
    const acs = sp.getAssertionConsumerService('post') as string;
    const issueInstant = iso(o.issueInstant ?? now);
    const notOnOrAfter = iso(o.notOnOrAfter ?? now + 5 * 60_000);
    const irt = o.inResponseTo === null ? '' : ` InResponseTo="${esc(o.inResponseTo)}"`;
    const destination = o.destination === null ? '' : ` Destination="${esc(o.destination ?? acs)}"`;
    const attributes = Object.entries(user.attributes ?? {});
    return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${issueInstant}"${destination}${irt}>`
      + `<saml:Issuer>${esc(o.issuer ?? entityId)}</saml:Issuer>`
      + `<samlp:Status><samlp:StatusCode Value="${esc(o.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success')}"/></samlp:Status>`
      + `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="${esc(o.assertionId ?? `_a${randomBytes(16).toString('hex')}`)}" Version="2.0" IssueInstant="${issueInstant}">`
      + `<saml:Issuer>${esc(o.assertionIssuer ?? o.issuer ?? entityId)}</saml:Issuer>`
      + `<saml:Subject><saml:NameID Format="${esc(user.nameIdFormat ?? EMAIL_FORMAT)}">${esc(user.nameId)}</saml:NameID>`
      + `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(o.subjectNotOnOrAfter ?? o.notOnOrAfter ?? now + 5 * 60_000)}" Recipient="${esc(o.recipient ?? acs)}"${irt}/></saml:SubjectConfirmation></saml:Subject>`
      + `<saml:Conditions NotBefore="${iso(o.notBefore ?? now)}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${esc(o.audience ?? spEntityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
      + `<saml:AuthnStatement AuthnInstant="${iso(o.authnInstant ?? now)}" SessionIndex="${esc(o.sessionIndex ?? `_s${randomBytes(8).toString('hex')}`)}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
      + (attributes.length
        ? `<saml:AttributeStatement>${attributes.map(([name, value]) => `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xsi:type="xs:string">${esc(value)}</saml:AttributeValue></saml:Attribute>`).join('')}</saml:AttributeStatement>`
        : '')
      + '</saml:Assertion></samlp:Response>';
  }

  /** A base64 SAMLResponse, built, signed and encrypted by samlify. */
  async function respond(o: ResponseOptions): Promise<string> {
    const now = Date.now();
    const idp = idpEntity(o.signWith ?? signing, Boolean(o.encryptTo));
    const sp = spEntity(o.sign ?? 'assertion', o.encryptTo);
    const xml = template(o, now);
    const result = await idp.createLoginResponse(sp, {} as never, 'post', {}, () => ({ id: 'ignored', context: xml }));
    return (result as { context: string }).context;
  }

  server.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      if (url.pathname === '/metadata') {
        res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(metadata());
        return;
      }
      if (url.pathname !== '/sso') {
        res.writeHead(404).end();
        return;
      }
      try {
        // The signed octets are the raw query parameters, in this order (Bindings §3.4.4.1).
        const raw = new Map((url.search.slice(1)).split('&').map((pair) => [pair.split('=')[0]!, pair] as const));
        const octetString = ['SAMLRequest', 'RelayState', 'SigAlg'].filter((k) => raw.has(k)).map((k) => raw.get(k)).join('&');
        const query = Object.fromEntries(url.searchParams);
        // Any signing certificate the SP publishes may have signed it (during an SP key rollover).
        let parsed: Awaited<ReturnType<ReturnType<typeof idpEntity>['parseLoginRequest']>> | undefined;
        let refusal: unknown;
        for (const cert of spSigningCerts()) {
          try {
            parsed = await idpEntity(signing, false).parseLoginRequest(spEntity('assertion', undefined, cert), 'redirect', { query, octetString } as never);
            break;
          } catch (err) {
            refusal = err;
          }
        }
        if (!parsed) throw refusal ?? new Error('no SP signing certificate');
        const request = parsed.extract.request as { id: string; assertionConsumerServiceUrl?: string; forceAuthn?: string };
        const xml = Buffer.from(await inflate(query.SAMLRequest!)).toString('utf8');
        requests.push({ id: request.id, forceAuthn: /ForceAuthn="true"/.test(xml), relayState: query.RelayState, acsUrl: request.assertionConsumerServiceUrl });
        const samlResponse = await respond({ inResponseTo: request.id });
        outcomes.push('answered');
        const acs = spEntity('assertion').entityMeta.getAssertionConsumerService('post') as string;
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
          `<!doctype html><form method="post" action="${esc(acs)}"><input type="hidden" name="SAMLResponse" value="${esc(samlResponse)}">`
          + (query.RelayState !== undefined ? `<input type="hidden" name="RelayState" value="${esc(query.RelayState)}">` : '')
          + '<button>Continue</button></form><script>document.forms[0].submit()</script>',
        );
      } catch (err) {
        outcomes.push(String((err as Error)?.message ?? err));
        res.writeHead(400, { 'content-type': 'text/plain' }).end('request refused');
      }
    })();
  });

  function spSigningCerts(): string[] {
    const doc = new DOMParser().parseFromString(spMetadata ?? '', 'text/xml');
    return Array.from(doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor'))
      .filter((key) => key.getAttribute('use') === 'signing')
      .map((key) => `-----BEGIN CERTIFICATE-----\n${key.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]!.textContent!.replace(/\s/g, '')}\n-----END CERTIFICATE-----\n`);
  }

  function metadata(): string {
    return samlify.IdentityProvider({
      entityID: entityId,
      signingCert: signing.certificatePem,
      wantAuthnRequestsSigned: true,
      singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: ssoUrl }],
      singleLogoutService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/slo` }],
      nameIDFormat: [EMAIL_FORMAT],
    } as Parameters<typeof samlify.IdentityProvider>[0]).getMetadata();
  }

  return {
    entityId,
    ssoUrl,
    metadataUrl: `${base}/metadata`,
    requests,
    outcomes,
    get certificatePem() { return signing.certificatePem; },
    get key() { return signing; },
    metadata,
    /** The IdP imports Lanyard's SP metadata (what its admin does with the metadata URL). */
    trustSp(xml: string) { spMetadata = xml; },
    signInAs(user: SamlUser) { current = user; },
    /** Starts signing with a new key; returns the new certificate (the old one stops being used). */
    rollover(): string {
      signing = generateSpKeys(new Date());
      return signing.certificatePem;
    },
    respond,
    /** The form fields of the auto-posting page the IdP answers GET /sso with. */
    async follow(redirectUrl: string): Promise<{ status: number; action?: string; SAMLResponse?: string; RelayState?: string }> {
      const res = await fetch(redirectUrl, { redirect: 'manual' });
      const html = await res.text();
      if (res.status !== 200) return { status: res.status };
      const field = (name: string) => {
        const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
        return match?.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
      };
      return { status: res.status, action: /action="([^"]*)"/.exec(html)?.[1]?.replace(/&amp;/g, '&'), SAMLResponse: field('SAMLResponse'), RelayState: field('RelayState') };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type SamlIdp = Awaited<ReturnType<typeof startSamlIdp>>;

async function inflate(base64: string): Promise<Buffer> {
  const { inflateRawSync } = await import('node:zlib');
  return inflateRawSync(Buffer.from(base64, 'base64'));
}
