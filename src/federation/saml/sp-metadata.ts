import type { SpKeyPair } from './config.ts';

const escape = (value: string) => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const certBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

/**
 * The service provider's metadata for one connector (SAML 2.0 Metadata §2.4.4): what the
 * company's IdP admin imports. Every key pair's certificate is published for signing and for
 * encryption, so during a rollover the IdP already trusts (and may encrypt to) the next key
 * before it is the one that signs (decision 0036).
 *
 * AuthnRequestsSigned: every request we send is signed. WantAssertionsSigned: we ask for a
 * signature on the assertion (it survives decryption and is the one that binds the subject);
 * a signed Response around an unsigned assertion is accepted too (SAML 2.0 Profiles §4.1.3.5).
 * The EncryptionMethods are exactly what `algorithms.ts` accepts (Metadata §2.4.1.1): AES-GCM
 * first, AES-CBC for the IdPs that encrypt with nothing else, RSA-OAEP for the key.
 */
export function buildSpMetadata(params: { entityId: string; acsUrl: string; keys: readonly SpKeyPair[]; nameIdFormat: string | undefined }): string {
  const keyDescriptors = params.keys.flatMap((key) => (['signing', 'encryption'] as const).map((use) => [
    `    <md:KeyDescriptor use="${use}">`,
    '      <ds:KeyInfo>',
    `        <ds:X509Data><ds:X509Certificate>${certBody(key.certificatePem)}</ds:X509Certificate></ds:X509Data>`,
    '      </ds:KeyInfo>',
    ...(use === 'encryption'
      ? [
          '      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>',
          '      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>',
          '      <md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc"/>',
          '      <md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>',
          // Key transport: RSA-OAEP only (rsa-1_5 is refused; algorithms.ts).
          '      <md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>',
        ]
      : []),
    '    </md:KeyDescriptor>',
  ].join('\n')));
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escape(params.entityId)}">`,
    '  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true" WantAssertionsSigned="true">',
    ...keyDescriptors,
    ...(params.nameIdFormat ? [`    <md:NameIDFormat>${escape(params.nameIdFormat)}</md:NameIDFormat>`] : []),
    `    <md:AssertionConsumerService index="0" isDefault="true" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escape(params.acsUrl)}"/>`,
    '  </md:SPSSODescriptor>',
    '</md:EntityDescriptor>',
    '',
  ].join('\n');
}
