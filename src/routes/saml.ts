import Router from '@koa/router';
import compose from 'koa-compose';
import type { Context, Middleware } from 'koa';
import { bodyParser } from '@koa/bodyparser';
import type { SamlConnector } from '../federation/saml/config.ts';
import { MAX_SAML_RESPONSE_CHARS, type SamlServiceProvider } from '../federation/saml/service-provider.ts';
import { SamlRefusal } from '../federation/saml/refusal.ts';
import { identityEncodingOnly, refuseNulInBody } from '../http/input-guards.ts';
import { AppError } from '../shared/errors.ts';

/**
 * The HTTP pieces of a SAML connector's service provider (docs/flows/sso.md, decision 0036).
 * The login strategy mounts them; both live under `/saml/:connectorId/`, the stable addresses
 * the company's IdP admin is given (`metadataUrl`, `acsUrl` of the service provider).
 */

/** Connector ids are `con_` and 22 base64url characters (src/shared/ids.ts); anything else is not one. */
const CONNECTOR_ID = /^con_[A-Za-z0-9_-]{1,64}$/;

/**
 * GET /saml/:connectorId/metadata — the SP metadata of one connector, public (the IdP admin, or
 * the IdP itself, fetches it). `findConnector` answers the connector with its secrets opened, or
 * undefined when there is no SAML connector by that id (a 404, the same for every unknown id).
 */
export function samlMetadataRoutes(deps: {
  findConnector: (id: string) => Promise<SamlConnector | undefined>;
  serviceProvider: Pick<SamlServiceProvider, 'metadata'>;
}): Router {
  const router = new Router();
  router.get('/saml/:connectorId/metadata', async (ctx) => {
    const id = ctx.params.connectorId ?? '';
    const connector = CONNECTOR_ID.test(id) ? await deps.findConnector(id) : undefined;
    if (!connector) throw new AppError('request.not_found', 404);
    ctx.type = 'application/samlmetadata+xml'; // SAML 2.0 Metadata §4.1.1
    // An IdP polls it; a few minutes of caching, so that a key rollover shows within minutes.
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = deps.serviceProvider.metadata(connector);
  });
  return router;
}

/**
 * The body parser for POST /saml/:connectorId/acs (HTTP-POST binding, SAML 2.0 Bindings §3.5):
 * an urlencoded form of `SAMLResponse` (base64, up to MAX_SAML_RESPONSE_CHARS, 64 KiB: an
 * encrypted assertion with the IdP's certificates is tens of kilobytes, beyond the 32 KiB of our
 * own forms) and
 * `RelayState`. Identity encoding only, NUL refused, as for every form of ours.
 *
 * No CSRF token: the IdP's page posts this cross-site and cannot carry ours. What stands in for
 * it is the response's signature and its InResponseTo, which must name the request this browser
 * made. The same cross-site POST carries no SameSite=Lax cookie either, so the handler cannot
 * know the browser here: it finds the login by RelayState and lets the browser come back with a
 * 303 (a top-level GET, which does carry the cookies) — docs/flows/sso.md.
 */
export function samlPostBody(): Middleware {
  const limit = `${Math.ceil((MAX_SAML_RESPONSE_CHARS * 1.2 + 4096) / 1024)}kb`; // percent-encoding of + / =
  return compose([
    identityEncodingOnly(),
    bodyParser({ enableTypes: ['form'], formLimit: limit, encoding: 'utf-8' }),
    refuseNulInBody(),
  ]) as Middleware;
}

/**
 * The posted fields, once `samlPostBody` ran: a SamlRefusal (`sso.saml_invalid`) when the form
 * is not a SAML response (no SAMLResponse, repeated fields, a RelayState over 80 bytes).
 */
export function readSamlPost(ctx: Context): { SAMLResponse: string; RelayState?: string } {
  const body = (ctx.request as { body?: unknown }).body;
  if (!body || typeof body !== 'object') throw new SamlRefusal('sso.saml_invalid', 'no form body');
  const { SAMLResponse, RelayState } = body as Record<string, unknown>;
  if (typeof SAMLResponse !== 'string' || SAMLResponse === '') throw new SamlRefusal('sso.saml_invalid', 'no SAMLResponse field');
  if (RelayState !== undefined && typeof RelayState !== 'string') throw new SamlRefusal('sso.saml_invalid', 'RelayState repeated');
  if (RelayState !== undefined && Buffer.byteLength(RelayState, 'utf8') > 80) throw new SamlRefusal('sso.saml_invalid', 'RelayState over 80 bytes');
  return RelayState === undefined || RelayState === '' ? { SAMLResponse } : { SAMLResponse, RelayState };
}
