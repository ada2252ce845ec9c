import { expect } from 'chai';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { openTestDatabase, resetDatabase } from '../../helpers/db.ts';
import { createSamlConnector, type SamlClaims } from '../../../src/federation/saml/service-provider.ts';
import { createSeenAssertions } from '../../../src/federation/saml/seen-assertions.ts';
import { createSamlAssertionSeenQueries } from '../../../src/persistence/queries/saml-assertions-seen.ts';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';
import { parseIdpMetadata } from '../../../src/federation/saml/idp-metadata.ts';
import { SamlRefusal } from '../../../src/federation/saml/refusal.ts';
import type { SamlConnector } from '../../../src/federation/saml/config.ts';

/**
 * The SAML service provider against a real IdP (samlify, over HTTP on 127.0.0.1) with its own
 * keys, and the real one-time-use store in the database. Only the SP's clock is ours to move.
 */
describe('SAML service provider (src/federation/saml) against a real IdP', function () {
  this.timeout(60_000);
  const ISSUER = 'https://id.example';
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
    sp = createSamlConnector({ issuer: ISSUER, clock: () => now, seen: createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock: { now: () => now } }) });
    // Configured as an admin would: from the IdP's metadata document.
    connector = { id: 'con_saml1', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false, nameAttribute: 'displayName' }, secrets: { spKeys: [spKeys[0]!] } };
    idp.trustSp(sp.metadata(connector));
    idp.signInAs({ nameId: 'ada@corp.example', attributes: { displayName: 'Ada Lovelace' } });
  });

  async function refusal(promise: Promise<unknown>): Promise<SamlRefusal> {
    try {
      await promise;
    } catch (err) {
      expect(err, String(err)).to.be.instanceOf(SamlRefusal);
      return err as SamlRefusal;
    }
    throw new Error('the response was accepted');
  }

  /** A login started here and answered by the IdP's own SSO endpoint, as the browser would carry it. */
  async function login(opts: { fresh?: boolean } = {}) {
    const started = await sp.start(connector, { relayState: 'flow-1', ...opts });
    const form = await idp.follow(started.redirectUrl);
    return { ...started, form };
  }

  const xmlOf = (samlResponse: string) => new DOMParser().parseFromString(Buffer.from(samlResponse, 'base64').toString('utf8'), 'text/xml');
  const encode = (doc: Document) => Buffer.from(new XMLSerializer().serializeToString(doc)).toString('base64');

  describe('a login started here (SP-initiated, HTTP-Redirect then HTTP-POST)', () => {
    it('sends a signed AuthnRequest the IdP verifies, and returns the claims of its signed response', async () => {
      const { requestId, form } = await login();
      expect(idp.outcomes).to.include('answered');
      const request = idp.requests.at(-1)!;
      expect(request).to.include({ id: requestId, relayState: 'flow-1', acsUrl: `${ISSUER}/saml/con_saml1/acs`, forceAuthn: false });
      expect(form.action).to.equal(`${ISSUER}/saml/con_saml1/acs`);
      expect(form.RelayState).to.equal('flow-1');
      const claims: SamlClaims = await sp.finish(connector, { SAMLResponse: form.SAMLResponse!, RelayState: form.RelayState }, { requestId });
      expect(claims).to.include({ subject: 'ada@corp.example', email: 'ada@corp.example', emailVerified: true, name: 'Ada Lovelace' });
      expect(claims.assertionId).to.match(/^_a/);
      expect(claims.sessionIndex).to.match(/^_s/);
      expect(claims.authTime).to.be.within(Math.floor(now / 1000) - 5, Math.floor(now / 1000) + 5);
    });

    it('signs the request query with RSA-SHA256 and the first SP key (SAML Bindings §3.4.4.1); the IdP refuses it unsigned', async () => {
      const { redirectUrl } = await sp.start(connector, { relayState: 'flow-1' });
      const url = new URL(redirectUrl);
      expect(url.origin + url.pathname).to.equal(idp.ssoUrl);
      expect(url.searchParams.get('SigAlg')).to.equal('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      const raw = url.search.slice(1).split('&');
      const signed = ['SAMLRequest', 'RelayState', 'SigAlg'].map((k) => raw.find((p) => p.startsWith(`${k}=`))).join('&');
      expect(verifySignature('sha256', Buffer.from(signed), createPublicKey(spKeys[0]!.certificatePem), Buffer.from(url.searchParams.get('Signature')!, 'base64'))).to.equal(true);
      const request = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      expect(request).to.contain(`<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${ISSUER}/saml/con_saml1/metadata</saml:Issuer>`);
      expect(request).to.contain(`Destination="${idp.ssoUrl}"`);

      url.searchParams.delete('Signature');
      const unsigned = await idp.follow(url.href);
      expect(unsigned.status).to.equal(400);
      const tampered = new URL(redirectUrl);
      tampered.searchParams.set('RelayState', 'flow-2');
      expect((await idp.follow(tampered.href)).status).to.equal(400);
    });

    it('asks for ForceAuthn when the login must be fresh (a re-authentication)', async () => {
      await login({ fresh: true });
      expect(idp.requests.at(-1)!.forceAuthn).to.equal(true);
    });

    it('refuses a RelayState over 80 bytes (SAML Bindings §3.4.3)', async () => {
      let thrown: unknown;
      await sp.start(connector, { relayState: 'x'.repeat(81) }).catch((err: unknown) => { thrown = err; });
      expect(thrown).to.be.instanceOf(RangeError);
    });
  });

  describe('SP metadata', () => {
    it('is at the stable URLs, announces signed requests, the ACS (HTTP-POST) and both certificates during a rollover', async () => {
      expect(sp.metadataUrl('con_saml1')).to.equal(`${ISSUER}/saml/con_saml1/metadata`);
      expect(sp.spEntityId('con_saml1')).to.equal(sp.metadataUrl('con_saml1'));
      expect(sp.acsUrl('con_saml1')).to.equal(`${ISSUER}/saml/con_saml1/acs`);
      const rolling = { ...connector, secrets: { spKeys } };
      const doc = new DOMParser().parseFromString(sp.metadata(rolling), 'text/xml');
      const md = 'urn:oasis:names:tc:SAML:2.0:metadata';
      const root = doc.documentElement!;
      expect(root.getAttribute('entityID')).to.equal(`${ISSUER}/saml/con_saml1/metadata`);
      const descriptor = doc.getElementsByTagNameNS(md, 'SPSSODescriptor')[0]!;
      expect(descriptor.getAttribute('AuthnRequestsSigned')).to.equal('true');
      const acs = doc.getElementsByTagNameNS(md, 'AssertionConsumerService')[0]!;
      expect(acs.getAttribute('Binding')).to.equal('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
      expect(acs.getAttribute('Location')).to.equal(`${ISSUER}/saml/con_saml1/acs`);
      const published = Array.from(doc.getElementsByTagNameNS(md, 'KeyDescriptor')).map((k) => `${k.getAttribute('use')}:${k.textContent!.replace(/\s/g, '').slice(0, 40)}`);
      const body = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '').slice(0, 40);
      expect(published).to.have.members(spKeys.flatMap((k) => [`signing:${body(k.certificatePem)}`, `encryption:${body(k.certificatePem)}`]));
      expect(sp.metadata(connector)).to.not.contain('PRIVATE KEY');
    });

    it('keeps working through an SP key rollover: both published, the first signs, then the new one alone', async () => {
      connector = { ...connector, secrets: { spKeys } };
      idp.trustSp(sp.metadata(connector));
      const during = await login();
      expect(await sp.finish(connector, { SAMLResponse: during.form.SAMLResponse! }, { requestId: during.requestId })).to.have.property('subject');
      // The old key is removed: the new one signs, and the IdP (which has both) still verifies.
      connector = { ...connector, secrets: { spKeys: [spKeys[1]!] } };
      const { redirectUrl, requestId } = await sp.start(connector, { relayState: 'r' });
      const url = new URL(redirectUrl);
      const raw = url.search.slice(1).split('&');
      const signed = ['SAMLRequest', 'RelayState', 'SigAlg'].map((k) => raw.find((p) => p.startsWith(`${k}=`))).join('&');
      expect(verifySignature('sha256', Buffer.from(signed), createPublicKey(spKeys[1]!.certificatePem), Buffer.from(url.searchParams.get('Signature')!, 'base64'))).to.equal(true);
      const after = await idp.follow(redirectUrl);
      expect(await sp.finish(connector, { SAMLResponse: after.SAMLResponse! }, { requestId })).to.have.property('subject');
    });
  });

  describe('signatures', () => {
    it('accepts a signature on the assertion, on the response, or on both', async () => {
      for (const sign of ['assertion', 'response', 'both'] as const) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const claims = await sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId, sign }) }, { requestId });
        expect(claims.subject, sign).to.equal('ada@corp.example');
      }
    });

    it('refuses a response with no signature at all', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const doc = xmlOf(await idp.respond({ inResponseTo: requestId, sign: 'both' }));
      for (const sig of Array.from(doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature'))) sig.parentNode!.removeChild(sig);
      const err = await refusal(sp.finish(connector, { SAMLResponse: encode(doc) }, { requestId }));
      expect(err.code).to.equal('sso.saml_invalid');
    });

    it('refuses a signed response whose content was changed (another NameID)', async () => {
      for (const sign of ['assertion', 'response'] as const) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const doc = xmlOf(await idp.respond({ inResponseTo: requestId, sign }));
        doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'NameID')[0]!.textContent = 'mallory@corp.example';
        const err = await refusal(sp.finish(connector, { SAMLResponse: encode(doc) }, { requestId }));
        expect(err.code, sign).to.equal('sso.saml_invalid');
      }
    });

    it('refuses a response signed by a key that is not the connector\'s IdP certificate', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const err = await refusal(sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId, signWith: generateSpKeys(new Date()) }) }, { requestId }));
      expect(err.code).to.equal('sso.saml_invalid');
      expect(err.reason).to.match(/signature/);
    });

    it('accepts either of two IdP certificates during the IdP\'s rollover, and only those', async () => {
      const oldKey = idp.key;
      const newCert = idp.rollover();
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const signedByNew = await idp.respond({ inResponseTo: requestId });
      // Only the old certificate configured: the new signature is not trusted yet.
      expect((await refusal(sp.finish(connector, { SAMLResponse: signedByNew }, { requestId }))).code).to.equal('sso.saml_invalid');
      connector = { ...connector, config: { ...connector.config, idpCertificates: [connector.config.idpCertificates[0]!, newCert] } };
      expect((await sp.finish(connector, { SAMLResponse: signedByNew }, { requestId })).subject).to.equal('ada@corp.example');
      // (A request is answered once: the old certificate's signature answers a new one.)
      const second = await sp.start(connector, { relayState: 'r' });
      const signedByOld = await idp.respond({ inResponseTo: second.requestId, signWith: oldKey });
      expect((await sp.finish(connector, { SAMLResponse: signedByOld }, { requestId: second.requestId })).subject).to.equal('ada@corp.example');
    });
  });

  describe('who the response is for', () => {
    it('refuses another audience, another recipient, another destination', async () => {
      const cases = [
        { audience: 'https://other-sp.example/metadata' },
        { recipient: 'https://other-sp.example/acs' },
        { destination: 'https://other-sp.example/acs' },
      ];
      for (const wrong of cases) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const err = await refusal(sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId, ...wrong }) }, { requestId }));
        expect(err.code, JSON.stringify(wrong)).to.equal('sso.saml_invalid');
      }
    });

    it('refuses a response or an assertion from another issuer, even when the signature verifies', async () => {
      for (const wrong of [{ issuer: 'https://evil-idp.example' }, { assertionIssuer: 'https://evil-idp.example' }]) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const err = await refusal(sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId, ...wrong }) }, { requestId }));
        expect(err.code).to.equal('sso.saml_invalid');
        expect(err.reason).to.match(/Issuer/);
      }
    });

    it('answers an IdP error status with sso.saml_idp_error', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const err = await refusal(sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId, statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }) }, { requestId }));
      expect(err.code).to.equal('sso.saml_idp_error');
    });
  });

  describe('InResponseTo: the request this browser made', () => {
    it('refuses a response to another request, and one arriving where no login was started', async () => {
      const mine = await sp.start(connector, { relayState: 'r' });
      const other = await sp.start(connector, { relayState: 'r' });
      const forOther = await idp.respond({ inResponseTo: other.requestId });
      expect((await refusal(sp.finish(connector, { SAMLResponse: forOther }, { requestId: mine.requestId }))).code).to.equal('sso.saml_wrong_request');
      expect((await refusal(sp.finish(connector, { SAMLResponse: forOther }, {}))).code).to.equal('sso.saml_wrong_request');
    });

    it('refuses an unsolicited (IdP-initiated) response unless the connector allows it', async () => {
      const unsolicited = await idp.respond({ inResponseTo: null });
      expect((await refusal(sp.finish(connector, { SAMLResponse: unsolicited }, {}))).code).to.equal('sso.saml_unsolicited');
      const allowing = { ...connector, config: { ...connector.config, idpInitiated: true } };
      expect((await sp.finish(allowing, { SAMLResponse: unsolicited }, {})).subject).to.equal('ada@corp.example');
    });

    it('refuses a response whose unsigned InResponseTo was changed to match', async () => {
      const mine = await sp.start(connector, { relayState: 'r' });
      const other = await sp.start(connector, { relayState: 'r' });
      const doc = xmlOf(await idp.respond({ inResponseTo: other.requestId, sign: 'assertion' }));
      doc.documentElement!.setAttribute('InResponseTo', mine.requestId);
      expect((await refusal(sp.finish(connector, { SAMLResponse: encode(doc) }, { requestId: mine.requestId }))).code).to.equal('sso.saml_invalid');
    });
  });

  describe('time, with 60 seconds of skew on our clock', () => {
    it('refuses an expired response, and accepts one a little early or late within the skew', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const response = await idp.respond({ inResponseTo: requestId }); // valid for five minutes
      const issuedAt = now;
      now = issuedAt + 5 * 60_000 + 61_000;
      expect((await refusal(sp.finish(connector, { SAMLResponse: response }, { requestId }))).code).to.equal('sso.saml_expired');
      now = issuedAt + 5 * 60_000 + 30_000;
      expect((await sp.finish(connector, { SAMLResponse: response }, { requestId })).subject).to.equal('ada@corp.example');
      // (A request is answered once: the early response answers a new one.)
      now = Date.now() - 30_000;
      const second = await sp.start(connector, { relayState: 'r' });
      const early = await idp.respond({ inResponseTo: second.requestId });
      expect((await sp.finish(connector, { SAMLResponse: early }, { requestId: second.requestId })).subject).to.equal('ada@corp.example');
    });

    it('refuses an assertion not valid yet (NotBefore beyond the skew)', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const future = await idp.respond({ inResponseTo: requestId, notBefore: Date.now() + 5 * 60_000, issueInstant: Date.now() });
      expect((await refusal(sp.finish(connector, { SAMLResponse: future }, { requestId }))).code).to.equal('sso.saml_expired');
    });

    it('refuses a bearer confirmation that has expired even when the Conditions have not', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const response = await idp.respond({ inResponseTo: requestId, subjectNotOnOrAfter: Date.now() - 2 * 60_000, notOnOrAfter: Date.now() + 5 * 60_000 });
      expect((await refusal(sp.finish(connector, { SAMLResponse: response }, { requestId }))).code).to.equal('sso.saml_expired');
    });

    it('refuses an assertion issued more than ten minutes ago, whatever its NotOnOrAfter says', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const old = await idp.respond({ inResponseTo: requestId, issueInstant: Date.now() - 20 * 60_000, notBefore: Date.now() - 20 * 60_000, notOnOrAfter: Date.now() + 24 * 3600_000 });
      expect((await refusal(sp.finish(connector, { SAMLResponse: old }, { requestId }))).code).to.equal('sso.saml_expired');
    });
  });

  describe('one use per assertion', () => {
    it('refuses the same assertion a second time, through the database', async () => {
      const { requestId, form } = await login();
      await sp.finish(connector, { SAMLResponse: form.SAMLResponse! }, { requestId });
      const err = await refusal(sp.finish(connector, { SAMLResponse: form.SAMLResponse! }, { requestId }));
      expect(err.code).to.equal('sso.saml_replay');
      const db = await openTestDatabase();
      const { rows } = await db.query<{ connector_id: string; expires_at: Date }>('SELECT connector_id, expires_at FROM saml_assertions_seen ORDER BY expires_at');
      // The assertion id, and the request id it answered (consumed: one response per request).
      expect(rows).to.have.length(2);
      expect(rows.map((r) => r.connector_id)).to.deep.equal(['con_saml1', 'con_saml1']);
      // The assertion: kept while it could be accepted (five minutes, plus the skew), not longer.
      expect(rows[0]!.expires_at.getTime()).to.be.within(now + 5 * 60_000, now + 6 * 60_000 + 5_000);
      // The request: while it could still be answered (an hour from start, plus the skew).
      expect(rows[1]!.expires_at.getTime()).to.be.within(now + 60 * 60_000, now + 61 * 60_000 + 5_000);
    });

    it('forgets ids once they have expired: the sweep removes them', async () => {
      const db = await openTestDatabase();
      const seen = createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock: { now: () => now } });
      expect(await seen.remember('con_a', '_x', new Date(now + 60_000))).to.equal(true);
      expect(await seen.remember('con_a', '_x', new Date(now + 60_000))).to.equal(false);
      expect(await seen.remember('con_b', '_x', new Date(now + 60_000))).to.equal(true);
      now += 61_000;
      expect(await seen.sweep()).to.equal(2);
      expect((await db.query('SELECT 1 FROM saml_assertions_seen')).rows).to.have.length(0);
    });
  });

  describe('encrypted assertions', () => {
    it('decrypts an assertion encrypted to the SP key, and to the next key during a rollover', async () => {
      connector = { ...connector, secrets: { spKeys } };
      idp.trustSp(sp.metadata(connector));
      for (const key of spKeys) {
        const { requestId } = await sp.start(connector, { relayState: 'r' });
        const response = await idp.respond({ inResponseTo: requestId, encryptTo: key.certificatePem });
        expect(Buffer.from(response, 'base64').toString('utf8')).to.contain('EncryptedAssertion').and.not.contain('ada@corp.example');
        expect((await sp.finish(connector, { SAMLResponse: response }, { requestId })).email).to.equal('ada@corp.example');
      }
    });

    it('refuses an assertion encrypted to a key that is not ours', async () => {
      const stranger = generateSpKeys(new Date());
      idp.trustSp(sp.metadata({ ...connector, secrets: { spKeys: [spKeys[0]!, stranger] } }));
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const response = await idp.respond({ inResponseTo: requestId, encryptTo: stranger.certificatePem });
      expect((await refusal(sp.finish(connector, { SAMLResponse: response }, { requestId }))).code).to.equal('sso.saml_invalid');
    });
  });

  describe('claims', () => {
    it('takes the email from the configured attribute, and none from a NameID that is not an email address', async () => {
      idp.signInAs({ nameId: 'u-1234', nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { mail: 'ada@corp.example' } });
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const claims = await sp.finish(connector, { SAMLResponse: await idp.respond({ inResponseTo: requestId }) }, { requestId });
      expect(claims).to.include({ subject: 'u-1234', email: undefined, emailVerified: false });
      const mapped = { ...connector, config: { ...connector.config, emailAttribute: 'mail' } };
      const again = await sp.start(mapped, { relayState: 'r' });
      expect(await sp.finish(mapped, { SAMLResponse: await idp.respond({ inResponseTo: again.requestId }) }, { requestId: again.requestId })).to.include({ subject: 'u-1234', email: 'ada@corp.example', emailVerified: true });
    });
  });

  describe('bad input', () => {
    it('refuses anything that is not a SAML response with sso.saml_invalid, and never says what was in it', async () => {
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const inputs = [
        '', 'not base64!', b64('not xml'), b64('<a><b></a>'),
        b64('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "ada@corp.example">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>'),
        b64('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'),
        b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>'),
        'A'.repeat(300 * 1024),
      ];
      for (const input of inputs) {
        const err = await refusal(sp.finish(connector, { SAMLResponse: input }, { requestId }));
        expect(err.code, input.slice(0, 40)).to.equal('sso.saml_invalid');
      }
      expect((await refusal(sp.finish(connector, {} as never, { requestId }))).code).to.equal('sso.saml_invalid');
    });

    it('keeps the assertion, the person and the keys out of every refusal\'s message and reason', async () => {
      idp.trustSp(sp.metadata({ ...connector, secrets: { spKeys } }));
      const { requestId } = await sp.start(connector, { relayState: 'r' });
      const responses = [
        await idp.respond({ inResponseTo: requestId, audience: 'https://x.example' }),
        await idp.respond({ inResponseTo: requestId, signWith: generateSpKeys(new Date()) }),
        await idp.respond({ inResponseTo: 'someone-else' }),
        await idp.respond({ inResponseTo: requestId, encryptTo: spKeys[1]!.certificatePem }),
      ];
      for (const response of responses) {
        const err = await refusal(sp.finish(connector, { SAMLResponse: response }, { requestId }));
        for (const text of [err.message, err.reason]) {
          expect(text).to.not.contain('ada@corp.example').and.not.contain('Ada Lovelace').and.not.contain('<').and.not.contain('PRIVATE');
        }
      }
    });
  });
});
