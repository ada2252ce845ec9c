import type { SpKeyPair } from './config.ts';
import { DATA_ENCRYPTIONS, KEY_TRANSPORTS, checkOaepDigest } from './algorithms.ts';
import { XmlRefused } from './xml.ts';

/** xml-encryption is loaded at the first encrypted assertion (decision 0059). */
let xmlEncryption: Promise<typeof import('xml-encryption')> | undefined;
const loadXmlEncryption = () => (xmlEncryption ??= import('xml-encryption'));

const XENC = 'http://www.w3.org/2001/04/xmlenc#';

const descendantsNamed = (root: Element, localName: string) => Array.from(root.getElementsByTagName('*')).filter((e) => e.localName === localName);
const childElements = (parent: Element) => {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) if (node.nodeType === 1) found.push(node as Element);
  return found;
};

/**
 * Opens a saml:EncryptedAssertion (SAML Core §2.3.4, §6.2) the way node-saml will open it after
 * us — with xml-encryption, the same library and the same bytes, so the plaintext we check is the
 * plaintext node-saml verifies — but only after a strict look at its shape and algorithms:
 *
 * - one xenc:EncryptedData and one xenc:EncryptedKey (inside its KeyInfo, or beside it, SAML Core
 *   §6.2), and no second EncryptionMethod or CipherValue anywhere: xml-encryption picks elements by
 *   local name and takes the first, so there must be only one to pick;
 * - the algorithms in `algorithms.ts` (RSA-OAEP; AES-GCM or AES-CBC), refused before any RSA
 *   operation, so insecure ones are never tried and xml-encryption never writes its console warning.
 *
 * Returns the decrypted XML and which of our keys opened it; throws XmlRefused otherwise (never
 * with a key or plaintext in the message).
 */
export async function decryptAssertion(encryptedAssertion: Element, keys: readonly SpKeyPair[]): Promise<{ xml: string; key: SpKeyPair }> {
  const children = childElements(encryptedAssertion);
  const data = children.filter((e) => e.namespaceURI === XENC && e.localName === 'EncryptedData');
  const keysBeside = children.filter((e) => e.namespaceURI === XENC && e.localName === 'EncryptedKey');
  if (data.length !== 1 || data.length + keysBeside.length !== children.length) throw new XmlRefused('EncryptedAssertion is not one EncryptedData (and its EncryptedKey)');
  if (descendantsNamed(encryptedAssertion, 'EncryptedData').length !== 1) throw new XmlRefused('more than one EncryptedData');
  const encryptedKeys = descendantsNamed(encryptedAssertion, 'EncryptedKey');
  if (encryptedKeys.length !== 1 || encryptedKeys[0]!.namespaceURI !== XENC) throw new XmlRefused('not exactly one EncryptedKey');
  if (descendantsNamed(encryptedAssertion, 'EncryptionMethod').length !== 2) throw new XmlRefused('not exactly two EncryptionMethods');
  if (descendantsNamed(encryptedAssertion, 'CipherValue').length !== 2) throw new XmlRefused('not exactly two CipherValues');
  if (descendantsNamed(encryptedAssertion, 'CipherReference').length) throw new XmlRefused('a CipherReference (only inline ciphertext)');

  const dataMethod = childElements(data[0]!).filter((e) => e.localName === 'EncryptionMethod');
  const keyMethod = childElements(encryptedKeys[0]!).filter((e) => e.localName === 'EncryptionMethod');
  if (dataMethod.length !== 1 || keyMethod.length !== 1) throw new XmlRefused('EncryptedData or EncryptedKey without its EncryptionMethod');
  const dataAlgorithm = dataMethod[0]!.getAttribute('Algorithm') ?? '';
  const keyAlgorithm = keyMethod[0]!.getAttribute('Algorithm') ?? '';
  if (!DATA_ENCRYPTIONS.has(dataAlgorithm)) throw new XmlRefused(`data encryption ${dataAlgorithm || '(none)'} is not accepted`);
  if (!KEY_TRANSPORTS.has(keyAlgorithm)) throw new XmlRefused(`key transport ${keyAlgorithm || '(none)'} is not accepted`);
  checkOaepDigest(keyMethod[0]!);

  // The same serialization node-saml hands xml-encryption (xmldom's toString of the element).
  const xml = encryptedAssertion.toString();
  // Loaded at the first encrypted assertion, as node-saml is (service-provider.ts; decision 0059).
  const { decrypt } = await loadXmlEncryption();
  for (const key of keys) {
    const opened = await new Promise<string | undefined>((resolve) => {
      decrypt(xml, { key: key.privateKeyPem, disallowDecryptionWithInsecureAlgorithm: true, warnInsecureAlgorithm: false }, (err: Error | null, result?: string) => resolve(err ? undefined : result));
    });
    if (typeof opened === 'string' && opened !== '') return { xml: opened, key };
  }
  throw new XmlRefused('the encrypted assertion opens with none of our keys');
}
