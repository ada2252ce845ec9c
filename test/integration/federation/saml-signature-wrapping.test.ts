import { expect } from 'chai';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { openTestDatabase, resetDatabase } from '../../helpers/db.ts';
import { createSamlConnector } from '../../../src/federation/saml/service-provider.ts';
import { createSeenAssertions } from '../../../src/federation/saml/seen-assertions.ts';
import { createSamlAssertionSeenQueries } from '../../../src/persistence/queries/saml-assertions-seen.ts';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';
import { parseIdpMetadata } from '../../../src/federation/saml/idp-metadata.ts';
import { SamlRefusal } from '../../../src/federation/saml/refusal.ts';
import type { SamlConnector } from '../../../src/federation/saml/config.ts';

/**
 * XML signature wrapping (Somorovsky et al., "On Breaking SAML", USENIX Security 2012): a
 * validly signed response from the company's IdP, for Ada, is rearranged so that the signature
 * still verifies over the moved original while an unsigned assertion for Mallory sits where a
 * naive reader looks. Each shape must be refused — and none may log anyone in as Mallory.
 */
describe('SAML service provider refuses XML signature wrapping', function () {
  this.timeout(60_000);
  const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
  const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
  const DS = 'http://www.w3.org/2000/09/xmldsig#';
  let idp: SamlIdp;
  let sp: ReturnType<typeof createSamlConnector>;
  let connector: SamlConnector;

  before(async () => {
    idp = await startSamlIdp();
  });
  after(async () => idp.close());

  beforeEach(async () => {
    await resetDatabase();
    const db = await openTestDatabase();
    sp = createSamlConnector({ issuer: 'https://id.example', clock: () => Date.now(), seen: createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock: { now: () => Date.now() } }) });
    connector = { id: 'con_xsw', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false }, secrets: { spKeys: [generateSpKeys(new Date())] } };
    idp.trustSp(sp.metadata(connector));
    idp.signInAs({ nameId: 'ada@corp.example' });
  });

  const parse = (b64: string) => new DOMParser().parseFromString(Buffer.from(b64, 'base64').toString('utf8'), 'text/xml');
  const encode = (doc: Document) => Buffer.from(new XMLSerializer().serializeToString(doc)).toString('base64');
  const child = (parent: Element, ns: string, name: string) => Array.from(parent.childNodes).find((n): n is Element => n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === name)!;

  /** An unsigned copy of the signed assertion, for Mallory, with a fresh ID (or the same one). */
  function evilTwin(doc: Document, assertion: Element, sameId = false): Element {
    const evil = assertion.cloneNode(true) as Element;
    const sig = child(evil, DS, 'Signature');
    if (sig) evil.removeChild(sig);
    evil.getElementsByTagNameNS(SAML, 'NameID')[0]!.textContent = 'mallory@corp.example';
    if (!sameId) evil.setAttribute('ID', '_evil');
    return doc.importNode(evil, true) as Element;
  }

  async function expectRefused(doc: Document, requestId: string, shape: string) {
    let accepted: unknown;
    try {
      accepted = await sp.finish(connector, { SAMLResponse: encode(doc) }, { requestId });
    } catch (err) {
      expect(err, `${shape}: ${String(err)}`).to.be.instanceOf(SamlRefusal);
      expect((err as SamlRefusal).code, shape).to.equal('sso.saml_invalid');
      return;
    }
    throw new Error(`${shape}: accepted as ${JSON.stringify(accepted)}`);
  }

  async function signedResponse(sign: 'assertion' | 'response') {
    const { requestId } = await sp.start(connector, { relayState: 'r' });
    const b64 = await idp.respond({ inResponseTo: requestId, sign });
    return { requestId, b64 };
  }

  it('accepts the untouched response (the control: the shapes below differ only by the move)', async () => {
    const { requestId, b64 } = await signedResponse('assertion');
    const doc = parse(b64);
    expect((await sp.finish(connector, { SAMLResponse: encode(doc) }, { requestId })).subject).to.equal('ada@corp.example');
  });

  it('signed assertion moved into an Extensions wrapper, an unsigned one for another email in its place', async () => {
    const { requestId, b64 } = await signedResponse('assertion');
    const doc = parse(b64);
    const response = doc.documentElement!;
    const signed = child(response, SAML, 'Assertion');
    const evil = evilTwin(doc, signed);
    response.replaceChild(evil, signed);
    const extensions = doc.createElementNS(SAMLP, 'samlp:Extensions');
    extensions.appendChild(signed);
    response.insertBefore(extensions, child(response, SAMLP, 'Status'));
    await expectRefused(doc, requestId, 'XSW: moved into Extensions');
  });

  it('signed assertion moved inside the unsigned one (nested), or kept beside it as a sibling', async () => {
    for (const shape of ['nested', 'sibling-before', 'sibling-after'] as const) {
      const { requestId, b64 } = await signedResponse('assertion');
      const doc = parse(b64);
      const response = doc.documentElement!;
      const signed = child(response, SAML, 'Assertion');
      const evil = evilTwin(doc, signed);
      if (shape === 'nested') {
        response.replaceChild(evil, signed);
        evil.appendChild(signed);
      } else if (shape === 'sibling-before') response.insertBefore(evil, signed);
      else response.appendChild(evil);
      await expectRefused(doc, requestId, shape);
    }
  });

  it('an unsigned assertion carrying the signed one\'s ID, the original hidden in the signature\'s Object', async () => {
    const { requestId, b64 } = await signedResponse('assertion');
    const doc = parse(b64);
    const response = doc.documentElement!;
    const signed = child(response, SAML, 'Assertion');
    const evil = evilTwin(doc, signed, true);
    response.replaceChild(evil, signed);
    // The attacker's assertion carries the original signature; the original goes into ds:Object.
    const signature = child(signed, DS, 'Signature');
    signed.removeChild(signature);
    const object = doc.createElementNS(DS, 'ds:Object');
    object.appendChild(signed);
    signature.appendChild(object);
    evil.insertBefore(signature, child(evil, SAML, 'Subject'));
    await expectRefused(doc, requestId, 'XSW: same ID, original in ds:Object');
  });

  it('a signed Response wrapped inside a new, unsigned Response (XSW on the message signature)', async () => {
    const { requestId, b64 } = await signedResponse('response');
    const doc = parse(b64);
    const original = doc.documentElement!;
    const outer = original.cloneNode(false) as Element;
    outer.setAttribute('ID', '_outer');
    for (const node of Array.from(original.childNodes)) {
      const element = node as Element;
      if (element.nodeType !== 1 || element.localName === 'Signature') continue;
      outer.appendChild(element.localName === 'Assertion' ? evilTwin(doc, element) : element.cloneNode(true));
    }
    const extensions = doc.createElementNS(SAMLP, 'samlp:Extensions');
    doc.removeChild(original);
    extensions.appendChild(original);
    outer.insertBefore(extensions, child(outer, SAMLP, 'Status'));
    doc.appendChild(outer);
    await expectRefused(doc, requestId, 'XSW: signed Response inside an unsigned one');
  });

  it('a signed Response whose assertion was swapped for an unsigned one (the signature no longer covers it)', async () => {
    const { requestId, b64 } = await signedResponse('response');
    const doc = parse(b64);
    const response = doc.documentElement!;
    const signed = child(response, SAML, 'Assertion');
    response.replaceChild(evilTwin(doc, signed, true), signed);
    await expectRefused(doc, requestId, 'assertion swapped under a response signature');
  });

  it('a comment inside the NameID (the truncation trick) does not change who is logged in', async () => {
    // Duo Labs 2018 (CVE-2017-11427): "ada@corp.example<!---->.evil" verifies (comments are
    // outside exclusive c14n) yet a reader taking the first text node sees the victim's address.
    // With this IdP's own signature over the comment-free value, inserting one must break it.
    const { requestId, b64 } = await signedResponse('assertion');
    const doc = parse(b64);
    const nameId = doc.getElementsByTagNameNS(SAML, 'NameID')[0]!;
    nameId.textContent = 'ada@corp.example.evil';
    nameId.insertBefore(doc.createComment(''), nameId.firstChild!.nextSibling);
    await expectRefused(doc, requestId, 'comment in NameID');
  });
});
