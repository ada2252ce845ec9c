import { X509Certificate } from 'node:crypto';
import { z } from 'zod';

/**
 * What a SAML connector keeps in `connectors.config` (non-secret). The IdP's side of the trust:
 * its entity id, where to send people, and the certificates its signatures must verify with.
 */
export interface SamlConnectorConfig {
  idpEntityId: string;
  /** The IdP's SingleSignOnService, HTTP-Redirect binding (SAML 2.0 Bindings §3.4). */
  ssoUrl: string;
  /** PEM; one, or two while the IdP rolls its signing certificate over (either one verifies). */
  idpCertificates: string[];
  /** Accept responses that answer no request of ours (IdP-initiated SSO). Off unless an admin turns it on. */
  idpInitiated: boolean;
  /** The attribute holding the email; without it, the NameID (emailAddress format) is the email. */
  emailAttribute?: string;
  /** The attribute holding the person's display name, when the IdP sends one. */
  nameAttribute?: string;
}

/**
 * The service provider's own key pairs for one connector (sealed by the caller). The first signs
 * AuthnRequests; every one is published in the SP metadata and tried to decrypt assertions, so
 * a new pair is added at the end, the IdP picks it up, then the old one is removed (decision 0036).
 */
export interface SamlConnectorSecrets {
  spKeys: SpKeyPair[];
}

export interface SpKeyPair {
  privateKeyPem: string;
  certificatePem: string;
  /** ISO 8601. */
  createdAt: string;
}

/** What `createSamlConnector` works on: the connector row, its secrets opened. */
export interface SamlConnector {
  id: string;
  config: SamlConnectorConfig;
  secrets: SamlConnectorSecrets;
}

/** A certificate in PEM that parses as X.509 (what node-saml and xml-crypto need). */
const certificatePem = z.string().max(16_384).refine((pem) => {
  if (!/^-----BEGIN CERTIFICATE-----\s[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*$/.test(pem.trim() + '\n')) return false;
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}, 'not an X.509 certificate in PEM');

const httpsOrLocalUrl = z.string().max(2048).refine((value) => {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === 'https:' || (url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost'));
}, 'an https URL (http only for 127.0.0.1 or localhost)');

const attributeName = z.string().trim().min(1).max(512).optional();

/**
 * Validates what an admin (or a metadata upload) gives for a connector: the console and the
 * management API parse with this before storing. Certificates must parse; the SSO URL must be
 * https (a plain http IdP would let anyone on the path read the AuthnRequest's RelayState).
 */
export const samlConnectorConfigSchema = z.object({
  idpEntityId: z.string().trim().min(1).max(1024),
  ssoUrl: httpsOrLocalUrl,
  idpCertificates: z.array(certificatePem).min(1).max(2),
  idpInitiated: z.boolean().default(false),
  emailAttribute: attributeName,
  nameAttribute: attributeName,
}).strict();

export function parseSamlConnectorConfig(input: unknown): SamlConnectorConfig {
  const parsed = samlConnectorConfigSchema.parse(input);
  return {
    idpEntityId: parsed.idpEntityId,
    ssoUrl: parsed.ssoUrl,
    idpCertificates: parsed.idpCertificates,
    idpInitiated: parsed.idpInitiated,
    ...(parsed.emailAttribute ? { emailAttribute: parsed.emailAttribute } : {}),
    ...(parsed.nameAttribute ? { nameAttribute: parsed.nameAttribute } : {}),
  };
}
