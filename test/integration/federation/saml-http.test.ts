import { expect } from 'chai';
import { join } from 'node:path';
import Koa from 'koa';
import request from 'supertest';
import { startSamlIdp, type SamlIdp } from '../../helpers/saml-idp.ts';
import { openTestDatabase, resetDatabase } from '../../helpers/db.ts';
import { createSamlConnector } from '../../../src/federation/saml/service-provider.ts';
import { createSeenAssertions } from '../../../src/federation/saml/seen-assertions.ts';
import { createSamlAssertionSeenQueries } from '../../../src/persistence/queries/saml-assertions-seen.ts';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';
import { parseIdpMetadata } from '../../../src/federation/saml/idp-metadata.ts';
import { isSamlRefusal } from '../../../src/federation/saml/refusal.ts';
import type { SamlConnector } from '../../../src/federation/saml/config.ts';
import { readSamlPost, samlMetadataRoutes, samlPostBody } from '../../../src/routes/saml.ts';
import { errorHandler } from '../../../src/http/error-handler.ts';
import { createViews } from '../../../src/http/views.ts';
import { rootDir } from '../../../src/registry.ts';

/**
 * The HTTP pieces the SAML login strategy mounts: the public SP metadata per connector, and the
 * ACS body parser, over real HTTP (supertest) with the application's error handler in front.
 * The ACS handler here is the smallest one a strategy would write: parse, finish, answer.
 */
describe('SAML endpoints (src/routes/saml.ts): GET /saml/:id/metadata, POST /saml/:id/acs body', function () {
  this.timeout(60_000);
  let idp: SamlIdp;
  let app: Koa;
  let connector: SamlConnector;
  let sp: ReturnType<typeof createSamlConnector>;
  const lookups: string[] = [];

  before(async () => {
    idp = await startSamlIdp();
  });
  after(async () => idp.close());

  beforeEach(async () => {
    await resetDatabase();
    const db = await openTestDatabase();
    sp = createSamlConnector({ issuer: 'https://id.example', clock: () => Date.now(), seen: createSeenAssertions({ queries: createSamlAssertionSeenQueries(db), clock: { now: () => Date.now() } }) });
    connector = { id: 'con_Http1', config: { ...parseIdpMetadata(idp.metadata()), idpInitiated: false }, secrets: { spKeys: [generateSpKeys(new Date()), generateSpKeys(new Date())] } };
    idp.trustSp(sp.metadata(connector));
    idp.signInAs({ nameId: 'ada@corp.example', attributes: { note: 'x'.repeat(26_000) } });
    lookups.length = 0;
    app = new Koa();
    app.silent = true;
    app.use(errorHandler(createViews(join(rootDir, 'views'), { cache: false, productName: 'Lanyard' })));
    app.use(samlMetadataRoutes({
      findConnector: async (id) => { lookups.push(id); return id === connector.id ? connector : undefined; },
      serviceProvider: sp,
    }).routes());
    app.use(async (ctx, next) => {
      if (ctx.method !== 'POST' || !/^\/saml\/[^/]+\/acs$/.test(ctx.path)) return next();
      await samlPostBody()(ctx, async () => {
        const body = readSamlPost(ctx);
        try {
          const claims = await sp.finish(connector, body, { requestId: ctx.get('x-test-request-id') || undefined });
          ctx.body = { subject: claims.subject, relayState: body.RelayState ?? null };
        } catch (err) {
          if (!isSamlRefusal(err)) throw err;
          ctx.status = 400;
          ctx.body = { code: err.code };
        }
      });
    });
  });

  it('serves the SP metadata of a known connector, as application/samlmetadata+xml, cacheable for minutes', async () => {
    const res = await request(app.callback()).get('/saml/con_Http1/metadata');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/samlmetadata\+xml/);
    expect(res.headers['cache-control']).to.equal('public, max-age=300');
    expect(res.text).to.equal(sp.metadata(connector));
    expect(res.text).to.contain('entityID="https://id.example/saml/con_Http1/metadata"');
  });

  it('answers the same 404 for an unknown connector and for something that is not a connector id (never asking the store)', async () => {
    const unknown = await request(app.callback()).get('/saml/con_nope/metadata').set('Accept', 'application/json');
    expect(unknown.status).to.equal(404);
    const garbage = await request(app.callback()).get('/saml/..%2F..%2Fetc/metadata').set('Accept', 'application/json');
    expect(garbage.status).to.equal(404);
    expect(garbage.body).to.deep.equal(unknown.body);
    expect(lookups).to.deep.equal(['con_nope']);
  });

  it('takes a large posted response (an encrypted assertion of ~45 KB, beyond the 32 KB of our forms) and its RelayState', async () => {
    const { requestId } = await sp.start(connector, { relayState: 'flow-9' });
    const samlResponse = await idp.respond({ inResponseTo: requestId, encryptTo: connector.secrets.spKeys[1]!.certificatePem });
    expect(samlResponse.length).to.be.within(40 * 1024, 64 * 1024);
    const res = await request(app.callback()).post('/saml/con_Http1/acs').type('form').set('x-test-request-id', requestId)
      .send({ SAMLResponse: samlResponse, RelayState: 'flow-9' });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.deep.equal({ subject: 'ada@corp.example', relayState: 'flow-9' });
  });

  it('refuses a form without SAMLResponse, with two, or with a RelayState over 80 bytes, as sso.saml_invalid', async () => {
    for (const body of ['RelayState=x', 'SAMLResponse=a&SAMLResponse=b', `SAMLResponse=abcd&RelayState=${'r'.repeat(81)}`]) {
      const res = await request(app.callback()).post('/saml/con_Http1/acs').type('form').set('Accept', 'application/json').send(body);
      expect(res.status, body).to.equal(400);
      expect(res.body.error, body).to.equal('sso.saml_invalid');
    }
  });

  it('refuses a compressed body (415), a body over the limit (413) and a NUL (400), without reaching the handler', async () => {
    const compressed = await request(app.callback()).post('/saml/con_Http1/acs').type('form').set('Content-Encoding', 'gzip').set('Accept', 'application/json').send('SAMLResponse=x');
    expect(compressed.status).to.equal(415);
    const huge = await request(app.callback()).post('/saml/con_Http1/acs').type('form').set('Accept', 'application/json').send(`SAMLResponse=${'A'.repeat(400 * 1024)}`);
    expect(huge.status).to.equal(413);
    const nul = await request(app.callback()).post('/saml/con_Http1/acs').type('form').set('Accept', 'application/json').send('SAMLResponse=a%00b');
    expect(nul.status).to.equal(400);
  });
});
