import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ConnectorIdentity, ConnectorProtocol } from '../../federation/connector-protocol.ts';
import type { ConnectorInput, ConnectorView, Connectors, LoginConnector } from '../../federation/connectors.ts';
import { isSamlRefusal } from '../../federation/saml/refusal.ts';
import { parseIdpMetadata } from '../../federation/saml/idp-metadata.ts';
import type { Message } from '../../http/messages.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { healthReason, oidcCallbackPath, startFailureReason, ssoIdentityCookie, ssoPendingCookie } from '../login/connector.ts';
import type { ConsoleKit } from './managed-accounts.ts';
import { adminMessage } from './messages.ts';

/**
 * The console's pages for an organization's identity providers (docs/flows/sso.md, "Console"):
 * the list with each connector's health line, registering one (OpenID Connect or SAML 2.0, the
 * fields per kind; for SAML the IdP's metadata XML may be pasted instead), editing it, linking it
 * to the organization's verified domains, and "Test connection": a real login at the upstream
 * that shows what came back, without signing anybody in. Authentication policies — which accounts
 * must use a connector — are the policies pages'. Every POST is behind the console's CSRF check
 * and its recent-login gate (app.ts).
 */
const MESSAGES: Record<string, Message> = {
  'connector.not_found': { title: 'No such identity provider', text: 'It does not exist in this organization.' },
  'connector.name_invalid': { title: 'Check the name', text: 'Give the identity provider a name of 1 to 100 characters, with something visible.' },
  'connector.name_taken': { title: 'That name is taken', text: 'Another identity provider of this organization has this name. Choose another one.' },
  'connector.config_invalid': { title: 'Check the settings', text: 'Some settings are not valid: {detail}' },
  'connector.secret_required': { title: 'Enter the client secret', text: 'The OpenID provider gave your application a client secret (at most 1000 characters). Paste it here.' },
  'connector.domain_invalid': { title: 'Choose your organization’s domains', text: 'Only domains your organization has verified can be linked.' },
  'connector.in_use': { title: 'This identity provider is required by a policy', text: 'Its people would be locked out. Change the policies that require it first.' },
  'connector.metadata_invalid': { title: 'We couldn’t read that metadata', text: 'Paste the IdP’s SAML metadata XML (an EntityDescriptor with an IDPSSODescriptor, its HTTP-Redirect SingleSignOnService and its signing certificate), or fill in the fields instead.' },
  'connector.unreachable': { title: 'The identity provider can’t be reached', text: 'We could not start a login there: {detail}' },
};

const messageOf = (code: string, detail?: string): Message => {
  const m = MESSAGES[code] ?? adminMessage(code);
  return { title: m.title, text: m.text.replace('{detail}', detail ?? '') };
};

const field = (body: Record<string, unknown>, name: string): string => (typeof body[name] === 'string' ? (body[name] as string) : '');

/** The form's fields as the connectors service takes them (validated there, per kind). */
function inputFrom(kind: 'oidc' | 'saml', body: Record<string, unknown>): ConnectorInput | { metadataProblem: true } {
  const name = field(body, 'name');
  const enabled = body.enabled === undefined ? undefined : field(body, 'enabled') === 'on';
  if (kind === 'oidc') {
    return {
      name,
      config: { issuer: field(body, 'issuer'), clientId: field(body, 'clientId'), scopes: field(body, 'scopes'), emailClaim: field(body, 'emailClaim'), nameClaim: field(body, 'nameClaim') },
      clientSecret: field(body, 'clientSecret'),
      ...(enabled === undefined ? {} : { enabled }),
    };
  }
  let fromMetadata: Partial<ReturnType<typeof parseIdpMetadata>> = {};
  const metadata = field(body, 'metadata').trim();
  if (metadata) {
    try {
      fromMetadata = parseIdpMetadata(metadata);
    } catch {
      return { metadataProblem: true };
    }
  }
  const certificates = field(body, 'idpCertificates').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return {
    name,
    config: {
      idpEntityId: fromMetadata.idpEntityId ?? field(body, 'idpEntityId'),
      ssoUrl: fromMetadata.ssoUrl ?? field(body, 'ssoUrl'),
      idpCertificates: fromMetadata.idpCertificates ?? certificates.map((c) => `${c}\n`),
      idpInitiated: field(body, 'idpInitiated') === 'on',
      ...(field(body, 'emailAttribute').trim() ? { emailAttribute: field(body, 'emailAttribute') } : {}),
      ...(field(body, 'nameAttribute').trim() ? { nameAttribute: field(body, 'nameAttribute') } : {}),
    },
    ...(enabled === undefined ? {} : { enabled }),
  };
}

export function connectorPages(deps: { connectors: Connectors; protocols: Partial<Record<LoginConnector['kind'], ConnectorProtocol>>; box: SecretBox; issuer: string; now: () => number }) {
  const { connectors } = deps;
  const pending = ssoPendingCookie(deps.box, deps.now);
  const carried = ssoIdentityCookie(deps.box, deps.now);

  return (router: Router, kit: ConsoleKit) => {
    const { page, signedIn, me, meta, done, notFound, shell, when } = kit;
    const HIDDEN = new Set(['organization.not_found', 'organization.forbidden', 'account.inactive', 'connector.not_found']);
    const listPath = (base: string) => `${base}/connectors`;

    /** What a connector's page shows about it: settings, the addresses to give the IdP's admin, the health line. */
    const connectorView = (c: ConnectorView, base: string) => ({
      ...c,
      path: `${listPath(base)}/${encodeURIComponent(c.id)}`,
      kindLabel: c.kind === 'oidc' ? 'OpenID Connect' : 'SAML 2.0',
      lastSuccess: when(c.lastSuccessAt),
      lastFailureWhen: when(c.lastFailureAt),
      // Failing now: the last failure is more recent than the last success.
      failing: Boolean(c.lastFailureAt && (!c.lastSuccessAt || c.lastFailureAt > c.lastSuccessAt)),
      redirectUri: `${deps.issuer}${oidcCallbackPath(c.id)}`,
      samlEntityId: `${deps.issuer}/saml/${encodeURIComponent(c.id)}/metadata`,
      samlAcsUrl: `${deps.issuer}/saml/${encodeURIComponent(c.id)}/acs`,
      certificates: Array.isArray(c.config.idpCertificates) ? (c.config.idpCertificates as string[]).join('\n') : '',
    });

    async function listPage(ctx: Context, status: number) {
      const base = await shell(ctx, ctx.params.organizationId!, 'connectors');
      const listed = await connectors.list(me(ctx), base.organization.id);
      if (!listed.ok) return notFound();
      page(ctx, status, 'admin/connectors', { title: `Identity providers · ${base.organization.name}`, ...base, connectors: listed.connectors.map((c) => connectorView(c, base.base)), ...kit.takeFlash(ctx) });
    }

    async function newPage(ctx: Context, status: number, kind: 'oidc' | 'saml', values: Record<string, unknown> = {}, error?: Message) {
      const base = await shell(ctx, ctx.params.organizationId!, 'connectors');
      page(ctx, status, 'admin/connector-new', { title: `New identity provider · ${base.organization.name}`, ...base, kind, values }, error);
    }

    async function connectorPage(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: Message) {
      const base = await shell(ctx, ctx.params.organizationId!, 'connectors');
      const found = await connectors.get(me(ctx), base.organization.id, ctx.params.connectorId!);
      if (!found.ok) return notFound();
      const domains = await connectors.linkableDomains(base.organization.id);
      const linked = new Set(found.connector.domains.map((d) => d.id));
      page(ctx, status, 'admin/connector', {
        title: `${found.connector.name} · ${base.organization.name}`,
        ...base,
        connector: connectorView(found.connector, base.base),
        domains: domains.map((d) => ({ ...d, linked: linked.has(d.id), linkable: d.state !== 'pending' })),
        ...kit.takeFlash(ctx),
        ...extra,
      }, error);
    }

    router.get('/organizations/:organizationId/connectors', signedIn, (ctx) => listPage(ctx, 200));

    router.get('/organizations/:organizationId/connectors/new', signedIn, (ctx) => newPage(ctx, 200, ctx.query.kind === 'saml' ? 'saml' : 'oidc', { scopes: 'openid email profile' }));

    router.post('/organizations/:organizationId/connectors', signedIn, async (ctx) => {
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      const kind = field(body, 'kind') === 'saml' ? 'saml' : 'oidc';
      const input = inputFrom(kind, body);
      const values = { ...body, clientSecret: '' };
      if ('metadataProblem' in input) return newPage(ctx, 400, kind, values, messageOf('connector.metadata_invalid'));
      const result = await connectors.create(me(ctx), ctx.params.organizationId!, kind, input, meta(ctx));
      if (!result.ok) {
        if (HIDDEN.has(result.problem)) return notFound();
        return newPage(ctx, result.problem === 'connector.name_taken' ? 409 : 400, kind, values, messageOf(result.problem, result.detail));
      }
      ctx.state.log?.info({ organizationId: ctx.params.organizationId, connector: result.connector.id, kind }, 'identity provider registered');
      done(ctx, `${listPath(`/admin/organizations/${encodeURIComponent(ctx.params.organizationId!)}`)}/${encodeURIComponent(result.connector.id)}`, { created: '1' });
    });

    router.get('/organizations/:organizationId/connectors/:connectorId', signedIn, (ctx) => connectorPage(ctx, 200));

    router.post('/organizations/:organizationId/connectors/:connectorId', signedIn, async (ctx) => {
      const found = await connectors.get(me(ctx), ctx.params.organizationId!, ctx.params.connectorId!);
      if (!found.ok) return notFound();
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      const input = inputFrom(found.connector.kind, { ...body, enabled: field(body, 'enabled') === 'on' ? 'on' : 'off' });
      if ('metadataProblem' in input) return connectorPage(ctx, 400, {}, messageOf('connector.metadata_invalid'));
      const result = await connectors.update(me(ctx), ctx.params.organizationId!, ctx.params.connectorId!, input, meta(ctx));
      if (!result.ok) {
        if (HIDDEN.has(result.problem)) return notFound();
        return connectorPage(ctx, result.problem === 'connector.in_use' || result.problem === 'connector.name_taken' ? 409 : 400, {}, messageOf(result.problem, result.detail));
      }
      done(ctx, ctx.path, { saved: '1' });
    });

    router.post('/organizations/:organizationId/connectors/:connectorId/domains', signedIn, async (ctx) => {
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      const raw = body.domain;
      const ids = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((v): v is string => typeof v === 'string').slice(0, 100);
      const result = await connectors.setDomains(me(ctx), ctx.params.organizationId!, ctx.params.connectorId!, ids, meta(ctx));
      if (!result.ok) {
        if (HIDDEN.has(result.problem)) return notFound();
        return connectorPage(ctx, 400, {}, messageOf(result.problem));
      }
      done(ctx, ctx.path.replace(/\/domains$/, ''), { linked: '1' });
    });

    // "Test connection": a real login at the upstream, in this browser, whose answer is shown
    // here and goes no further — nobody is signed in, no account is created or linked.
    router.post('/organizations/:organizationId/connectors/:connectorId/test', signedIn, async (ctx) => {
      const found = await connectors.forTest(me(ctx), ctx.params.organizationId!, ctx.params.connectorId!);
      if (!found.ok) return notFound();
      const connector = found.connector;
      const protocol = deps.protocols[connector.kind];
      if (!protocol) return connectorPage(ctx, 503, {}, messageOf('connector.unreachable', `no ${connector.kind} support configured`));
      let started;
      try {
        // The upstream is asked now (not a discovery document fetched earlier), and its login
        // always fresh: the test is about the upstream's login, not a session it already holds.
        await protocol.reachable?.(connector);
        started = await protocol.start(connector, { maxAge: 0, relayState: 'test' });
      } catch (err) {
        const reason = startFailureReason(connector, err);
        await connectors.recordOutcome(connector.id, { ok: false, reason });
        ctx.state.log?.warn({ connector: connector.id, err: { message: (err as Error).message, cause: String((err as Error).cause ?? '') } }, 'connector test: upstream unreachable');
        // The category only (upstream-fetch.ts): never the raw network error.
        return connectorPage(ctx, 502, {}, messageOf('connector.unreachable', reason.replace(/^upstream (unreachable: )?/, '')));
      }
      pending.set(ctx, { connectorId: connector.id, pending: started.pending, test: { organizationId: connector.organizationId, accountId: me(ctx) } });
      ctx.status = 303;
      ctx.redirect(started.redirectUrl);
    });

    router.get('/organizations/:organizationId/connectors/:connectorId/test/callback', signedIn, async (ctx) => {
      const base = await shell(ctx, ctx.params.organizationId!, 'connectors');
      const connectorId = ctx.params.connectorId!;
      const found = await connectors.forTest(me(ctx), base.organization.id, connectorId);
      if (!found.ok) return notFound();
      const connector = found.connector;
      const show = (status: number, result: { identity?: ConnectorIdentity; failure?: string }) => {
        const email = result.identity?.email?.toLowerCase();
        const domain = email?.split('@')[1];
        page(ctx, status, 'admin/connector-test', {
          title: `Test of ${connector.name}`,
          ...base,
          connector: { id: connector.id, name: connector.name, path: `${listPath(base.base)}/${encodeURIComponent(connector.id)}` },
          identity: result.identity,
          onDomains: domain ? connector.domains.includes(domain) : false,
          failure: result.failure,
        });
      };
      // SAML: validated at the ACS continuation, carried here sealed.
      const identity = carried.get(ctx);
      if (identity) {
        carried.clear(ctx);
        if (identity.connectorId !== connectorId || identity.test?.accountId !== me(ctx)) return show(400, { failure: 'This answer belongs to another test. Start the test again.' });
        await connectors.recordOutcome(connectorId, { ok: true });
        return show(200, { identity: identity.identity });
      }
      const started = pending.get(ctx);
      pending.clear(ctx);
      if (!started || started.connectorId !== connectorId || started.test?.accountId !== me(ctx)) return show(400, { failure: 'No test of this identity provider was started in this browser, or it took more than ten minutes. Start the test again.' });
      const protocol = deps.protocols[connector.kind];
      if (typeof ctx.query.error === 'string') {
        const code = ctx.query.error.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 60);
        await connectors.recordOutcome(connectorId, { ok: false, reason: `the provider answered error=${code}` });
        return show(200, { failure: `The identity provider answered with the error “${code}”.` });
      }
      try {
        const got = await protocol!.finish(connector, { callbackUrl: new URL(`${deps.issuer}${oidcCallbackPath(connectorId)}?${ctx.querystring}`) }, started.pending);
        await connectors.recordOutcome(connectorId, { ok: true });
        return show(200, { identity: got });
      } catch (err) {
        const reason = healthReason('response refused', isSamlRefusal(err) ? `${err.code}: ${err.reason}` : err);
        await connectors.recordOutcome(connectorId, { ok: false, reason });
        return show(200, { failure: reason });
      }
    });
  };
}
