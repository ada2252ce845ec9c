import { XmlRefused } from './xml.ts';

/**
 * The XML Signature and XML Encryption algorithms a response may name. Everything else is refused
 * before node-saml, xml-crypto or xml-encryption run, so their own (wider) lists never matter.
 */

/** RSA with SHA-2 (RFC 6931 §2.3.2, §2.3.4; xmldsig-core1 §6.4.2). SHA-1 is refused (NIST SP 800-131A). */
const SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
]);
const DIGEST_METHODS = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
/**
 * Canonicalization and transforms: the enveloped signature and c14n without comments. The
 * #WithComments forms are refused: a comment inside a signed NameID is how the 2018 "comment
 * truncation" attacks moved a signed value (no IdP signs with them).
 */
const CANONICALIZATIONS = new Set([
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
]);
const TRANSFORMS = new Set([...CANONICALIZATIONS, 'http://www.w3.org/2000/09/xmldsig#enveloped-signature']);

/**
 * Key transport: RSA-OAEP only (XML Encryption 1.1 §5.5.2). RSA PKCS#1 v1.5 (rsa-1_5) is refused
 * before any RSA operation: its padding errors are the Bleichenbacher oracle that XML Encryption
 * 1.1 §5.5.1 warns of. `xmlenc11#rsa-oaep` is not offered: xml-encryption, which node-saml
 * decrypts with, does not implement it.
 */
export const KEY_TRANSPORTS = new Set(['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p']);
/** The OAEP digest (absent means SHA-1, which is sound inside OAEP; xmlenc-core1 §5.5.2). */
const OAEP_DIGESTS = new Set([
  'http://www.w3.org/2000/09/xmldsig#sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
/**
 * Block encryption: AES-GCM, and AES-CBC because ADFS, Entra ID and Okta encrypt with it by
 * default (decision 0036 weighs this). Triple-DES is refused. All four are in our metadata.
 */
export const DATA_ENCRYPTIONS = new Set([
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
]);

/** Every attribute of this local name (any namespace): libraries that read by local name find them all. */
function algorithmsOf(element: Element): string[] {
  const found: string[] = [];
  for (let i = 0; i < element.attributes.length; i += 1) {
    const attribute = element.attributes.item(i)!;
    if ((attribute.localName ?? attribute.name) === 'Algorithm') found.push(attribute.value);
  }
  return found;
}

function allAllowed(element: Element, allowed: Set<string>, what: string): void {
  const algorithms = algorithmsOf(element);
  if (!algorithms.length) throw new XmlRefused(`${what} without an algorithm`);
  for (const algorithm of algorithms) if (!allowed.has(algorithm)) throw new XmlRefused(`${what} ${algorithm} is not accepted`);
}

/**
 * Checks every signature-related element of the document, matched by local name whatever its
 * namespace (xml-crypto reads SignatureMethod, DigestMethod, Transform and CanonicalizationMethod
 * by local name), so no algorithm reaches xml-crypto that is not in the lists above.
 * DigestMethod inside an EncryptionMethod is OAEP's digest and is checked with the encryption.
 */
export function checkSignatureAlgorithms(doc: Document): void {
  const all = doc.getElementsByTagName('*');
  for (let i = 0; i < all.length; i += 1) {
    const element = all.item(i)!;
    switch (element.localName) {
      case 'SignatureMethod': allAllowed(element, SIGNATURE_METHODS, 'signature algorithm'); break;
      case 'CanonicalizationMethod': allAllowed(element, CANONICALIZATIONS, 'canonicalization'); break;
      case 'Transform': allAllowed(element, TRANSFORMS, 'transform'); break;
      case 'DigestMethod':
        if ((element.parentNode as Element | null)?.localName !== 'EncryptionMethod') allAllowed(element, DIGEST_METHODS, 'digest algorithm');
        break;
      default:
    }
  }
}

/** The key transport's OAEP digest, when one is named. */
export function checkOaepDigest(encryptionMethod: Element): void {
  for (let child = encryptionMethod.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === 1 && (child as Element).localName === 'DigestMethod') allAllowed(child as Element, OAEP_DIGESTS, 'OAEP digest');
  }
}
