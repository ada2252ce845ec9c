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

/**
 * Parses what an admin gives for a connector (console, management API) — not what is stored:
 * a stored connector is read as it is. A certificate that has already expired (at `now`, by
 * default the system clock) is refused here: it is an old file or a paste of the wrong
 * certificate, and accepting it would only postpone the surprise. A stored certificate that
 * expires later keeps verifying — SAML metadata trusts the key, not its dates (Metadata
 * Interoperability Profile §2.6.1), and refusing then would stop every login of the company at
 * once — and `idpCertificateWarnings` tells the console in good time (decision 0036).
 */
export function parseSamlConnectorConfig(input: unknown, options: { now?: number } = {}): SamlConnectorConfig {
  const now = options.now ?? Date.now();
  const parsed = samlConnectorConfigSchema.superRefine((config, ctx) => {
    config.idpCertificates.forEach((pem, index) => {
      if (Date.parse(new X509Certificate(pem).validTo) <= now) ctx.addIssue({ code: 'custom', path: ['idpCertificates', index], message: 'this certificate has expired; use the identity provider\'s current signing certificate' });
    });
  }).parse(input);
  return {
    idpEntityId: parsed.idpEntityId,
    ssoUrl: parsed.ssoUrl,
    idpCertificates: parsed.idpCertificates,
    idpInitiated: parsed.idpInitiated,
    ...(parsed.emailAttribute ? { emailAttribute: parsed.emailAttribute } : {}),
    ...(parsed.nameAttribute ? { nameAttribute: parsed.nameAttribute } : {}),
  };
}

/** How long before its expiry a certificate is called out (the time an admin needs to roll over). */
const EXPIRY_NOTICE_MS = 30 * 86_400_000;

export interface CertificateWarning {
  /** Index in `idpCertificates`. */
  index: number;
  kind: 'expired' | 'expires_soon' | 'not_yet_valid';
  /** ISO 8601. */
  at: string;
  /** For the console, as is. */
  message: string;
}

/**
 * What the console shows next to a connector's IdP certificates: expired, expiring within 30
 * days, or not valid yet. Signatures still verify with them (see parseSamlConnectorConfig); the
 * admin adds the IdP's next certificate (a connector keeps two) before the IdP switches.
 */
export function idpCertificateWarnings(config: Pick<SamlConnectorConfig, 'idpCertificates'>, now: number): CertificateWarning[] {
  return config.idpCertificates.flatMap((pem, index): CertificateWarning[] => {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pem);
    } catch {
      return [];
    }
    const validTo = Date.parse(certificate.validTo);
    const validFrom = Date.parse(certificate.validFrom);
    const at = (ms: number) => new Date(ms).toISOString();
    if (validTo <= now) return [{ index, kind: 'expired', at: at(validTo), message: `The identity provider's certificate ${index + 1} expired on ${at(validTo).slice(0, 10)}. Its signatures still verify here, but the identity provider should have moved to a new one: add the new certificate, then remove this one.` }];
    if (validTo - now <= EXPIRY_NOTICE_MS) return [{ index, kind: 'expires_soon', at: at(validTo), message: `The identity provider's certificate ${index + 1} expires on ${at(validTo).slice(0, 10)}. Add its next certificate before the identity provider switches.` }];
    if (validFrom > now) return [{ index, kind: 'not_yet_valid', at: at(validFrom), message: `The identity provider's certificate ${index + 1} is valid only from ${at(validFrom).slice(0, 10)}.` }];
    return [];
  });
}
