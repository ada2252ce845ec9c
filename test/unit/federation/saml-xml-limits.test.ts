import { expect } from 'chai';
import { SAML_XML_LIMITS, checkXmlLimits, checkXmlText, parseBoundedXml } from '../../../src/federation/saml/xml-limits.ts';
import { checkSignatureAlgorithms } from '../../../src/federation/saml/algorithms.ts';
import { parseStrictXml, XmlRefused } from '../../../src/federation/saml/xml.ts';

const A = 'urn:oasis:names:tc:SAML:2.0:assertion';
const refusedBy = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(XmlRefused);
    return (err as Error).message;
  }
  throw new Error('accepted');
};
/** The tree bound alone (the text bound off), to show each tree bound holds by itself. */
const tree = (xml: string) => refusedBy(() => checkXmlLimits(parseStrictXml(xml)));

describe('SAML input bounds (src/federation/saml/xml-limits.ts)', () => {
  it('each tree bound refuses at one past it, and not at it', () => {
    const L = SAML_XML_LIMITS;
    expect(tree(`<r>${'<a/>'.repeat(L.maxChildren + 1)}</r>`)).to.match(/more than 128 children/);
    expect(() => checkXmlLimits(parseStrictXml(`<r>${'<a/>'.repeat(L.maxChildren)}</r>`))).not.to.throw();
    expect(tree(`<r>${'<!---->'.repeat(L.maxChildren + 1)}</r>`)).to.match(/children/);
    expect(tree(`${'<a>'.repeat(L.maxDepth + 1)}${'</a>'.repeat(L.maxDepth + 1)}`)).to.match(/nested deeper than 32/);
    expect(() => checkXmlLimits(parseStrictXml(`${'<a>'.repeat(L.maxDepth)}${'</a>'.repeat(L.maxDepth)}`))).not.to.throw();
    expect(tree(`<r ${Array.from({ length: L.maxAttributesPerElement + 1 }, (_, i) => `a${i}=""`).join(' ')}/>`)).to.match(/32 attributes/);
    expect(tree(`<r>${`<a ${Array.from({ length: 20 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}/>`.repeat(7)}</r>`)).to.match(/namespace declarations/);
    expect(tree(`<r>${`<g>${'<a/>'.repeat(100)}</g>`.repeat(11)}</r>`)).to.match(/more than 1000 elements/);
    expect(tree(`<r>${`<g>${'<!---->x'.repeat(60)}</g>`.repeat(26)}</r>`)).to.match(/more than 3000 nodes/);
    expect(tree(`<r>${`<g ${Array.from({ length: 30 }, (_, i) => `a${i}=""`).join(' ')}/>`.repeat(67)}</r>`)).to.match(/more than 2000 attributes/);
  });

  it('lets an attribute list be long (a group list), up to its own bound', () => {
    const values = (n: number) => `<saml:Assertion xmlns:saml="${A}"><saml:AttributeStatement><saml:Attribute Name="groups">${'<saml:AttributeValue>g</saml:AttributeValue>'.repeat(n)}</saml:Attribute></saml:AttributeStatement></saml:Assertion>`;
    expect(() => parseBoundedXml(values(900))).not.to.throw();
    expect(tree(values(SAML_XML_LIMITS.maxAttributeListChildren + 1))).to.match(/elements|children/);
    // The same names in another namespace get the ordinary bound.
    expect(tree(`<x:Attribute xmlns:x="urn:other">${'<v/>'.repeat(200)}</x:Attribute>`)).to.match(/128 children/);
  });

  it('bounds the text before the parser sees it: tags, attributes, namespace declarations', () => {
    expect(refusedBy(() => checkXmlText(`<r>${'<a/>'.repeat(2_300)}</r>`))).to.match(/tags/);
    expect(refusedBy(() => checkXmlText(`<r>${'<a b="" c=""/>'.repeat(1_001)}</r>`))).to.match(/2000 attributes/);
    expect(refusedBy(() => checkXmlText(`<r ${Array.from({ length: 129 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}/>`))).to.match(/namespace/);
  });

  it('walks 30,000 levels of nesting without overflowing the stack, stopping at the bound', () => {
    const deep = `${'<a>'.repeat(30_000)}${'</a>'.repeat(30_000)}`;
    expect(refusedBy(() => parseBoundedXml(deep))).to.match(/tags/);
  });
});

describe('signature algorithms (src/federation/saml/algorithms.ts)', () => {
  const sig = (method: string, digest: string, c14n = 'http://www.w3.org/2001/10/xml-exc-c14n#') => `<r><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="${c14n}"/><ds:SignatureMethod Algorithm="${method}"/><ds:Reference URI="#x"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms><ds:DigestMethod Algorithm="${digest}"/></ds:Reference></ds:SignedInfo></ds:Signature></r>`;
  const check = (xml: string) => () => checkSignatureAlgorithms(parseStrictXml(xml));

  it('accepts RSA-SHA256 with SHA-256, refuses SHA-1, HMAC and #WithComments, also under a foreign prefix', () => {
    expect(check(sig('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmlenc#sha256'))).not.to.throw();
    expect(check(sig('http://www.w3.org/2000/09/xmldsig#rsa-sha1', 'http://www.w3.org/2001/04/xmlenc#sha256'))).to.throw(XmlRefused, /signature algorithm/);
    expect(check(sig('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2000/09/xmldsig#sha1'))).to.throw(XmlRefused, /digest/);
    expect(check(sig('http://www.w3.org/2000/09/xmldsig#hmac-sha1', 'http://www.w3.org/2001/04/xmlenc#sha256'))).to.throw(XmlRefused);
    expect(check(sig('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments'))).to.throw(XmlRefused, /canonicalization/);
    // xml-crypto reads SignatureMethod by local name: a second one in another namespace counts too.
    expect(check(sig('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmlenc#sha256').replace('<ds:SignedInfo>', '<ds:SignedInfo><x:SignatureMethod xmlns:x="urn:x" Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>'))).to.throw(XmlRefused);
  });
});
