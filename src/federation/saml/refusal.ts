import { AppError } from '../../shared/errors.ts';

/**
 * Why a SAML response was refused. The codes are stable (they key the page people see and the
 * operator's log line); the detail is for the log only and never holds the assertion, a key or
 * an attribute value.
 *
 * - `sso.saml_invalid`: not a SAML response we can accept — malformed, over the size or shape
 *   bounds, without a Status, unsigned, a signature that does not verify with the connector's
 *   certificates or uses an algorithm we refuse (SHA-1), the wrong issuer, audience, recipient or
 *   destination, a wrapped (moved) assertion, an encrypted one we cannot or will not open.
 * - `sso.saml_expired`: outside its validity window (NotBefore / NotOnOrAfter, with the skew), an
 *   AuthnInstant in the future or older than a re-authentication allows, or an answer to a
 *   request made too long ago.
 * - `sso.saml_replay`: an assertion id already used once (SAML 2.0 Profiles §4.1.4.5), or a
 *   request already answered by another accepted response.
 * - `sso.saml_unsolicited`: no `InResponseTo`, and the connector does not accept IdP-initiated logins.
 * - `sso.saml_wrong_request`: `InResponseTo` names a request other than the one this browser made.
 * - `sso.saml_idp_error`: the IdP answered with a non-success status (the person cancelled, or
 *   the IdP refused them).
 */
export type SamlRefusalCode =
  | 'sso.saml_invalid'
  | 'sso.saml_expired'
  | 'sso.saml_replay'
  | 'sso.saml_unsolicited'
  | 'sso.saml_wrong_request'
  | 'sso.saml_idp_error';

export class SamlRefusal extends AppError {
  override readonly code: SamlRefusalCode;
  /** For the operator's log: what exactly failed (no assertion content, no key). */
  readonly reason: string;

  constructor(code: SamlRefusalCode, reason: string, options: { cause?: unknown } = {}) {
    super(code, 400, { message: `${code}: ${reason}`, expose: false, cause: options.cause });
    this.name = 'SamlRefusal';
    this.code = code;
    this.reason = reason;
  }
}

export function isSamlRefusal(err: unknown): err is SamlRefusal {
  return err instanceof SamlRefusal;
}
