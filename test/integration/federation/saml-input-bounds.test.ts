import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { encrypt } from 'xml-encryption';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { openTestDatabase, resetDatabase } from '../../helpers/db.ts';
import { createSamlConnector, MAX_SAML_RESPONSE_CHARS, type SamlClaims } from '../../../src/federation/saml/service-provider.ts';
import { createSeenAssertions } from '../../../src/federation/saml/seen-assertions.ts';
import { createSamlAssertionSeenQueries } from '../../../src/persistence/queries/saml-assertions-seen.ts';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';
import { parseIdpMetadata } from '../../../src/federation/saml/idp-metadata.ts';
import { SamlRefusal } from '../../../src/federation/saml/refusal.ts';
import type { SamlConnector } from '../../../src/federation/saml/config.ts';

/**
 * What the security review found (decision 0036, "Unauthenticated input"): shapes that keep the
 * libraries busy for seconds to minutes, and algorithms and reuses that must be refused. Every
 * response here fits under MAX_SAML_RESPONSE_CHARS, so what refuses it is the shape bound, the
 * algorithm list or the request's one use — not the size. Without the bounds, the sibling cases
 * alone took tens of seconds each in node-saml (the review measured 75 s for 12,000 siblings).
 */
describe('SAML service provider: bounds on unauthenticated input, algorithms, one response per request', function () {
  this.timeout(30_000);
  const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
  const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
  const EXC = 'http://www.w3.org/2001/10/xml-exc-c14n#';
  const ENV = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
  let idp: SamlIdp;
  let now: number;
  let sp: ReturnType<typeof createSamlConnector>;
  let connector: SamlConnector;
  const spKeys = [generateSpKeys(new Date()), generateSpKeys(new Date())];

  before(async () => {
    idp = await startSamlIdp();
  });
  after(async () => idp.close());

  beforeEach(async () => {
    await resetDatabase();
    const db = await openTestDatabase();
    now = Date.now();
    sp = createSamlConnector({ issuer: 'https://id.example', clock: () => now, seen: createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock: { now: () => now } }) });
    connector = { id: 'con_bounds', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false, emailAttribute: 'mail' }, secrets: { spKeys } };
  });

  const iso = (ms: number) => new Date(ms).toISOString();
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

  function assertion(requestId: string, attributes = ''): string {
    const acs = sp.acsUrl(connector.id);
    return `<saml:Assertion xmlns:saml="${SAML}" ID="_a${randomBytes(10).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}">`
      + `<saml:Issuer>${idp.entityId}</saml:Issuer>`
      + `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">u-1</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(now + 300_000)}" Recipient="${acs}" InResponseTo="${requestId}"/></saml:SubjectConfirmation></saml:Subject>`
      + `<saml:Conditions NotBefore="${iso(now - 1000)}" NotOnOrAfter="${iso(now + 300_000)}"><saml:AudienceRestriction><saml:Audience>${sp.spEntityId(connector.id)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
      + `<saml:AuthnStatement AuthnInstant="${iso(now)}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
      + `<saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue>ada@corp.example</saml:AttributeValue></saml:Attribute>${attributes}</saml:AttributeStatement>`
      + '</saml:Assertion>';
  }

  function sign(xml: string, opts: { c14n?: string } = {}): string {
    const sig = new SignedXml({ privateKey: idp.key.privateKeyPem, publicCert: idp.key.certificatePem, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', canonicalizationAlgorithm: opts.c14n ?? EXC });
    sig.addReference({ xpath: "//*[local-name(.)='Assertion']", transforms: [ENV, opts.c14n ?? EXC], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
    sig.computeSignature(xml, { prefix: 'ds', location: { reference: "//*[local-name(.)='Issuer']", action: 'after' } });
    return sig.getSignedXml();
  }

  function response(requestId: string, inner: string, beforeStatus = ''): string {
    return b64(`<samlp:Response xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="_r${randomBytes(10).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}" Destination="${sp.acsUrl(connector.id)}" InResponseTo="${requestId}">`
      + `<saml:Issuer>${idp.entityId}</saml:Issuer>${beforeStatus}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${inner}</samlp:Response>`);
  }

  async function encrypted(content: string, data = 'http://www.w3.org/2009/xmlenc11#aes256-gcm', cert = spKeys[0]!.certificatePem): Promise<string> {
    const result = await new Promise<string>((resolve, reject) => encrypt(content, { rsa_pub: cert, pem: cert, encryptionAlgorithm: data as 'http://www.w3.org/2009/xmlenc11#aes256-gcm', keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p', warnInsecureAlgorithm: false }, (err, out) => (err ? reject(err) : resolve(out))));
    return `<saml:EncryptedAssertion>${result}</saml:EncryptedAssertion>`;
  }

  async function outcome(promise: Promise<SamlClaims>): Promise<SamlClaims | SamlRefusal> {
    try {
      return await promise;
    } catch (err) {
      expect(err, String(err)).to.be.instanceOf(SamlRefusal);
      return err as SamlRefusal;
    }
  }

  async function refusedQuickly(samlResponse: string, requestId: string, reason: RegExp): Promise<void> {
    expect(samlResponse.length, 'fits under the size limit').to.be.below(MAX_SAML_RESPONSE_CHARS);
    const started = performance.now();
    const result = await outcome(sp.finish(connector, { SAMLResponse: samlResponse }, { requestId }));
    const took = performance.now() - started;
    expect(result).to.be.instanceOf(SamlRefusal);
    expect((result as SamlRefusal).code).to.equal('sso.saml_invalid');
    expect((result as SamlRefusal).reason).to.match(reason);
    expect(took, `${took.toFixed(0)} ms`).to.be.below(3_000); // generous: the shapes it refuses took 28–780 s before the bounds; a timing under load must not flake
  }

  describe('shape bounds, on the envelope and on the decrypted assertion', () => {
    const shapes: [string, () => string, RegExp][] = [
      ['9,000 empty siblings directly under the Response', () => '<a/>'.repeat(9_000), /tags|children|elements|nodes/],
      ['9,000 empty siblings under Extensions', () => `<samlp:Extensions>${'<a/>'.repeat(9_000)}</samlp:Extensions>`, /tags|children|elements|nodes/],
      ['5,000 comments under the Response', () => '<!---->'.repeat(5_000), /tags|children|nodes/],
      ['5,000 levels of nesting', () => `<samlp:Extensions>${'<a>'.repeat(5_000)}${'</a>'.repeat(5_000)}</samlp:Extensions>`, /tags|nested|elements/],
      ['5,000 attributes on one element', () => `<samlp:Extensions><a ${Array.from({ length: 5_000 }, (_, i) => `a${i}=""`).join(' ')}/></samlp:Extensions>`, /attributes/],
      ['2,500 namespace declarations on one element', () => `<samlp:Extensions><a ${Array.from({ length: 2_500 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}/></samlp:Extensions>`, /attributes|namespace/],
      ['200 namespace declarations on each of 40 siblings', () => `<samlp:Extensions>${`<a ${Array.from({ length: 20 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}/>`.repeat(40)}</samlp:Extensions>`, /namespace/],
    ];
    for (const [name, shape, reason] of shapes) {
      it(`refuses ${name} (signed assertion beside it) in milliseconds`, async () => {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        await refusedQuickly(response(requestId, sign(assertion(requestId)), shape()), requestId, reason);
      });
    }

    it('refuses a signed assertion with 1,100 values in one attribute (the bound inside the attribute lists)', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const values = '<saml:AttributeValue/>'.repeat(1_100);
      await refusedQuickly(response(requestId, sign(assertion(requestId, `<saml:Attribute Name="groups">${values}</saml:Attribute>`))), requestId, /children|elements/);
    });

    it('refuses an EncryptedAssertion (anyone can make one to our public certificate) whose plaintext has 7,000 siblings, in milliseconds, before node-saml parses it', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const content = `<saml:Assertion xmlns:saml="${SAML}" ID="_x" Version="2.0">${'<a/>'.repeat(7_000)}</saml:Assertion>`;
      await refusedQuickly(response(requestId, await encrypted(content)), requestId, /encrypted assertion refused: .*(tags|children|elements)/);
    });

    it('accepts what real IdPs send: a signed assertion with 40 attributes and a 300-entry group list, pretty-printed', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const groups = Array.from({ length: 300 }, () => `\n        <saml:AttributeValue>${randomBytes(16).toString('hex')}</saml:AttributeValue>`).join('');
      const others = Array.from({ length: 40 }, (_, i) => `\n      <saml:Attribute Name="attr${i}">\n        <saml:AttributeValue>value ${i}</saml:AttributeValue>\n      </saml:Attribute>`).join('');
      const signed = sign(assertion(requestId, `\n      <saml:Attribute Name="groups">${groups}\n      </saml:Attribute>${others}`));
      const started = performance.now();
      const claims = await sp.finish(connector, { SAMLResponse: response(requestId, signed) }, { requestId });
      expect(claims).to.include({ subject: 'u-1', email: 'ada@corp.example' });
      expect(performance.now() - started).to.be.below(10_000);
    });
  });

  describe('encryption', () => {
    it('opens an assertion encrypted with AES-GCM or AES-CBC to either of the connector\'s keys (SP key rollover)', async () => {
      for (const [data, key] of [['http://www.w3.org/2009/xmlenc11#aes128-gcm', 0], ['http://www.w3.org/2001/04/xmlenc#aes256-cbc', 1]] as const) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const claims = await sp.finish(connector, { SAMLResponse: response(requestId, await encrypted(sign(assertion(requestId)), data, spKeys[key]!.certificatePem)) }, { requestId });
        expect(claims.email, data).to.equal('ada@corp.example');
      }
    });

    it('refuses an EncryptedAssertion with a second EncryptedKey or EncryptedData (xml-encryption would pick the first by local name)', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const one = await encrypted(sign(assertion(requestId)));
      const key = /<e:EncryptedKey[\s\S]*<\/e:EncryptedKey>/.exec(one)![0];
      const data = /<xenc:EncryptedData[\s\S]*<\/xenc:EncryptedData>/.exec(one)![0];
      for (const doubled of [one.replace('</saml:EncryptedAssertion>', `${key}</saml:EncryptedAssertion>`), one.replace('</saml:EncryptedAssertion>', `${data}</saml:EncryptedAssertion>`)]) {
        const result = await outcome(sp.finish(connector, { SAMLResponse: response(requestId, doubled) }, { requestId }));
        expect(result).to.be.instanceOf(SamlRefusal);
        expect((result as SamlRefusal).reason).to.match(/^encrypted assertion refused: (not exactly one EncryptedKey|more than one EncryptedData|EncryptedAssertion is not one)/);
      }
    });

    it('announces RSA-OAEP and the AES modes it accepts in the metadata, nothing else', () => {
      const algorithms = [...sp.metadata(connector).matchAll(/EncryptionMethod Algorithm="([^"]+)"/g)].map((m) => m[1]);
      expect(new Set(algorithms)).to.deep.equal(new Set([
        'http://www.w3.org/2009/xmlenc11#aes256-gcm', 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
        'http://www.w3.org/2001/04/xmlenc#aes256-cbc', 'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
        'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      ]));
    });
  });

  describe('signature algorithms', () => {
    it('refuses a signature canonicalized #WithComments (the comment-truncation family)', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const signed = sign(assertion(requestId), { c14n: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments' });
      const result = await outcome(sp.finish(connector, { SAMLResponse: response(requestId, signed) }, { requestId }));
      expect((result as SamlRefusal).reason).to.match(/canonicalization|transform/);
    });
  });

  describe('one response per request', () => {
    it('a request answered once cannot be answered again, even by a fresh assertion; a request older than an hour is not answered at all', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      expect((await sp.finish(connector, { SAMLResponse: response(requestId, sign(assertion(requestId))) }, { requestId })).subject).to.equal('u-1');
      const again = await outcome(sp.finish(connector, { SAMLResponse: response(requestId, sign(assertion(requestId))) }, { requestId }));
      expect(again).to.be.instanceOf(SamlRefusal);
      expect((again as SamlRefusal).code).to.equal('sso.saml_replay');
      expect((again as SamlRefusal).reason).to.equal('the request was already answered');

      const old = await sp.start(connector, { relayState: 'r' });
      now += 3600_000 + 61_000;
      const late = await outcome(sp.finish(connector, { SAMLResponse: response(old.requestId, sign(assertion(old.requestId))) }, { requestId: old.requestId }));
      expect((late as SamlRefusal).code).to.equal('sso.saml_expired');
      expect((late as SamlRefusal).reason).to.equal('the request was made too long ago');
    });
  });
});
