import { X509Certificate } from 'node:crypto';
import { AppError } from '../../shared/errors.ts';
import type { SamlConnectorConfig } from './config.ts';
import { NS, XmlRefused, childrenNamed, parseStrictXml } from './xml.ts';

const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
/** Metadata of one IdP is a few kilobytes; a federation's aggregate is not what an admin uploads. */
const MAX_METADATA_BYTES = 512 * 1024;

/**
 * The admin uploaded metadata that cannot configure a connector. `expose`: the message says
 * what is wrong, so the console can show it as is.
 */
export class SamlMetadataError extends AppError {
  constructor(message: string) {
    super('sso.saml_metadata_invalid', 400, { message, expose: true });
    this.name = 'SamlMetadataError';
  }
}

/**
 * Reads the IdP's metadata XML (SAML 2.0 Metadata, saml-metadata-2.0-os) into the connector's
 * settings: the entity id, the SingleSignOnService of the HTTP-Redirect binding, and the signing
 * certificates (KeyDescriptor use="signing", or without `use`, which means both; §2.4.1.1).
 *
 * Accepts an EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP. The metadata's
 * own signature is not checked: the admin uploading it is the trust decision, as when they
 * paste the certificate by hand.
 *
 * Certificates that have expired at `now` (default: the system clock) are left out — metadata
 * during an IdP's rollover lists the old one beside the new — and metadata whose every signing
 * certificate has expired is refused (parseSamlConnectorConfig refuses expired ones too).
 */
export function parseIdpMetadata(xml: string, options: { now?: number } = {}): Pick<SamlConnectorConfig, 'idpEntityId' | 'ssoUrl' | 'idpCertificates'> {
  const now = options.now ?? Date.now();
  if (typeof xml !== 'string' || xml.trim() === '') throw new SamlMetadataError('The metadata is empty.');
  if (Buffer.byteLength(xml, 'utf8') > MAX_METADATA_BYTES) throw new SamlMetadataError('The metadata is too large (512 KiB at most): upload the metadata of your identity provider only.');
  let root: Element;
  try {
    root = parseStrictXml(xml.replace(/^\uFEFF/, '')).documentElement!;
  } catch (err) {
    throw new SamlMetadataError(`The metadata is not valid XML: ${err instanceof XmlRefused ? err.message : 'it could not be read'}.`);
  }
  if (root.namespaceURI !== NS.metadata) throw new SamlMetadataError('This is not SAML 2.0 metadata (the root element is not in the SAML metadata namespace).');

  let entity: Element;
  if (root.localName === 'EntityDescriptor') entity = root;
  else if (root.localName === 'EntitiesDescriptor') {
    const idps = childrenNamed(root, NS.metadata, 'EntityDescriptor').filter((e) => childrenNamed(e, NS.metadata, 'IDPSSODescriptor').length > 0);
    if (idps.length !== 1) throw new SamlMetadataError(`The metadata describes ${idps.length} identity providers; upload the metadata of exactly one.`);
    entity = idps[0]!;
  } else throw new SamlMetadataError('This is not SAML 2.0 metadata (no EntityDescriptor).');

  const idpEntityId = (entity.getAttribute('entityID') ?? '').trim();
  if (!idpEntityId) throw new SamlMetadataError('The metadata has no entityID.');
  if (idpEntityId.length > 1024) throw new SamlMetadataError('The entityID is too long.');

  const descriptors = childrenNamed(entity, NS.metadata, 'IDPSSODescriptor')
    .filter((d) => (d.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL));
  if (descriptors.length !== 1) throw new SamlMetadataError('The metadata has no IDPSSODescriptor for SAML 2.0.');
  const idp = descriptors[0]!;

  const sso = childrenNamed(idp, NS.metadata, 'SingleSignOnService').find((s) => s.getAttribute('Binding') === REDIRECT_BINDING);
  const ssoUrl = sso?.getAttribute('Location')?.trim() ?? '';
  if (!ssoUrl) throw new SamlMetadataError('The identity provider offers no SingleSignOnService with the HTTP-Redirect binding.');
  if (!URL.canParse(ssoUrl) || !['https:', 'http:'].includes(new URL(ssoUrl).protocol)) throw new SamlMetadataError('The SingleSignOnService location is not an http(s) URL.');

  const certificates: string[] = [];
  for (const key of childrenNamed(idp, NS.metadata, 'KeyDescriptor')) {
    const use = key.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const keyInfo of childrenNamed(key, NS.dsig, 'KeyInfo')) {
      for (const data of childrenNamed(keyInfo, NS.dsig, 'X509Data')) {
        for (const cert of childrenNamed(data, NS.dsig, 'X509Certificate')) {
          const base64 = (cert.textContent ?? '').replace(/\s+/g, '');
          const pem = toPem(base64);
          if (!pem) throw new SamlMetadataError('A signing certificate in the metadata is not a valid X.509 certificate.');
          if (!certificates.includes(pem)) certificates.push(pem);
        }
      }
    }
  }
  if (certificates.length === 0) throw new SamlMetadataError('The metadata has no signing certificate.');
  const current = certificates.filter((pem) => Date.parse(new X509Certificate(pem).validTo) > now);
  if (current.length === 0) throw new SamlMetadataError('Every signing certificate in the metadata has expired: download the identity provider\'s current metadata.');
  certificates.splice(0, certificates.length, ...current);
  if (certificates.length > 2) throw new SamlMetadataError(`The metadata has ${certificates.length} signing certificates; a connector keeps two at most (during a rollover).`);
  return { idpEntityId, ssoUrl, idpCertificates: certificates };
}

function toPem(base64: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  const lines = base64.match(/.{1,64}/g)!;
  const pem = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  try {
    new X509Certificate(pem);
    return pem;
  } catch {
    return undefined;
  }
}
