import { expect } from 'chai';
import supertest from 'supertest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, PageDriver } from '../../helpers/login-driver.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';
import { startInteraction } from '../../helpers/authorization.ts';
import { createLogger } from '../../../src/shared/logger.ts';

/** The links of a page's main content (the masthead's home link left out). */
const linksIn = (html: string) => [...(/<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '').matchAll(/<a [^>]*href="([^"]+)"/g)].map((m) => m[1]!);

/**
 * No dead ends: the root says what this is, end pages lead on, a GET on a form's address finds
 * its page, a finished sign-in says it is done, APIs answer JSON, the favicon is served.
 */
describe('pages without dead ends (/, end pages, form addresses, finished sign-ins, /api errors, favicon)', () => {
  let server: TestServer;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    await resetDatabase();
    server = await startTestServer({
      // Like production: no development mailbox or demo data.
      overrides: { devMailbox: false, seedDemo: false },
      logger: createLogger('info', { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>); } }),
    });
  });
  after(async () => server.close());

  describe('the root', () => {
    it('says what the service is and leads to account settings and password reset', async () => {
      const res = await supertest(server.url).get('/');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.contain('text/html');
      expect(res.text).to.contain('One account for Jira, Confluence, Bitbucket and Trello');
      expect(linksIn(res.text)).to.include.members(['/account', '/password/forgot']);
      expect(res.text, 'no development section outside development').not.to.contain('/dev/mailbox');
    });

    it('links every page’s brand to it', async () => {
      const res = await supertest(server.url).get('/password/forgot');
      expect(res.text).to.contain('<a class="brand" href="/">');
    });
  });

  describe('end pages lead somewhere', () => {
    it('after a password reset: log in to the account', async () => {
      const account = await createAccount(server.registry);
      await server.registry.passwordResets.request(account.email);
      await server.registry.mail.delivery.deliverDue();
      const mail = server.registry.mail.devMailbox!.messages().find((m) => m.to === account.email)!;
      const token = new URL(/https?:\/\/\S+\/password\/reset\?token=\S+/.exec(mail.text)![0]).searchParams.get('token')!;
      const agent = supertest.agent(server.url);
      const form = await agent.get(`/password/reset?token=${token}`);
      // The outcome's own page (Post/Redirect/Get), which a reload shows again.
      const done = await agent.post('/password/reset').type('form').redirects(1).send({ _csrf: csrfFrom(form.text), token, password: 'a brand new passphrase' });
      expect(done.status).to.equal(200);
      expect((await agent.get('/password/reset/done')).text, 'a reload says the same').to.equal(done.text);
      expect(done.text).to.contain('Your password was changed');
      expect(linksIn(done.text)).to.include('/account');
    });

    it('after closing the account: log in to reopen it, or go home', async () => {
      const account = await createAccount(server.registry);
      const { agent } = await signInToAccount(server.url, account.email);
      const posted = await submit(agent, '/account/close', '/account/close', { password: PASSWORD });
      expect([posted.status, posted.headers.location]).to.deep.equal([303, '/account/closed']);
      const closed = await agent.get('/account/closed');
      expect(closed.status).to.equal(200);
      expect((await agent.get('/account/closed')).text, 'a reload says the same, not “sign in again”').to.equal(closed.text);
      expect(linksIn(closed.text)).to.include.members(['/account', '/']);
    });

    it('after logging out: log in again, or go home', async () => {
      const account = await createAccount(server.registry);
      const { agent } = await signInToAccount(server.url, account.email);
      const confirm = await agent.get('/session/end');
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.text)![1]!;
      const ended = await agent.post('/session/end/confirm').type('form').send({ xsrf, logout: 'yes' }).redirects(3);
      expect(ended.text).to.contain('You’re logged out');
      expect(linksIn(ended.text)).to.include.members(['/account', '/']);
    });

    it('on an error page: go home', async () => {
      const res = await supertest(server.url).get('/account/nothing-here').accept('html');
      expect(res.status).to.equal(404);
      expect(linksIn(res.text)).to.include('/');
    });
  });

  describe('a GET on a form’s address', () => {
    it('goes to the page the form belongs to, for settings forms', async () => {
      const account = await createAccount(server.registry);
      const { agent } = await signInToAccount(server.url, account.email);
      for (const [address, page] of [
        ['/account/trello/link', '/account/trello'],
        ['/account/security/two-step/disable', '/account/security'],
        ['/account/sessions/end-others', '/account/sessions'],
        ['/account/apps/some-client/revoke', '/account/apps'],
        ['/account/avatar', '/account/profile'],
        ['/account/avatar/remove', '/account/profile'],
      ] as const) {
        const res = await agent.get(address);
        expect(res.status, address).to.equal(303);
        expect(res.headers.location, address).to.equal(page);
        expect((await agent.get(page)).status, page).to.equal(200);
      }
    });

    it('goes to the interaction’s page for a login form', async () => {
      const client = await createClient(server.registry, { firstParty: true });
      const agent = supertest.agent(server.url);
      const uid = await startInteraction(agent, client);
      for (const step of ['identify', 'password', 'abort', 'consent']) {
        const res = await agent.get(`/interaction/${uid}/${step}`);
        expect(res.status, step).to.equal(303);
        expect(res.headers.location).to.equal(`/interaction/${uid}`);
      }
      expect((await agent.get(`/interaction/${uid}`)).text).to.contain('Log in');
    });

    it('still refuses other methods with 405 and Allow, as a page', async () => {
      const account = await createAccount(server.registry);
      const { agent } = await signInToAccount(server.url, account.email);
      const res = await agent.put('/account/password').accept('html');
      expect(res.status).to.equal(405);
      expect(res.headers.allow).to.contain('POST');
      expect(res.text).to.contain('That can’t be done here');
    });
  });

  describe('an interaction opened again after it finished', () => {
    it('says the sign-in is done and leads back to the app, for the login and the consent page', async () => {
      const account = await createAccount(server.registry);
      const client = await createClient(server.registry, { firstParty: false, name: 'Board Exporter', redirectUris: ['http://127.0.0.1:9/callback'] });
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const driver = new PageDriver(server.url);
      const callback = await driver.authorize(url.href, { email: account.email, password: PASSWORD });
      expect(callback.searchParams.get('code')).to.be.a('string');
      expect(driver.uids).to.have.length(2); // login, then consent

      for (const uid of driver.uids) {
        const back = await driver.agent.get(`/interaction/${uid}`);
        expect(back.status, uid).to.equal(200);
        expect(back.text).to.contain('You’re done here');
        expect(back.text).to.contain('Board Exporter');
        expect(back.text).not.to.contain('took too long');
        expect(linksIn(back.text)).to.include.members(['http://127.0.0.1:9/', '/account']);
      }
      // A reload of a form's address lands there too.
      const reload = await driver.agent.get(`/interaction/${driver.uids[1]}/consent`).redirects(1);
      expect(reload.text).to.contain('You’re done here');
      // A form sent again (Back twice, then "resubmit"): done too, and nothing happens twice.
      const resent = await driver.agent.post(`/interaction/${driver.uids[0]}/password`).type('form')
        .send({ _csrf: csrfFrom((await driver.agent.get('/password/forgot')).text), email: account.email, password: PASSWORD });
      expect(resent.status).to.equal(200);
      expect(resent.text).to.contain('You’re done here');
      // Another browser, or a sign-in that never finished, still hears that it expired.
      const stranger = await supertest(server.url).get(`/interaction/${driver.uids[0]}`).accept('html');
      expect(stranger.status).to.equal(400);
      expect(stranger.text).to.contain('This sign-in has ended');
    });

    it('says it was cancelled the same way after Cancel', async () => {
      const account = await createAccount(server.registry);
      const client = await createClient(server.registry, { firstParty: false, name: 'Exporter', redirectUris: ['https://exporter.example/oauth/cb'] });
      const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const driver = new PageDriver(server.url);
      const callback = await driver.authorize(url.href, { email: account.email, password: PASSWORD }, { consent: false });
      expect(callback.searchParams.get('error')).to.equal('access_denied');
      const back = await driver.agent.get(`/interaction/${driver.uids.at(-1)}`);
      expect(back.status).to.equal(200);
      expect(linksIn(back.text)).to.include('https://exporter.example/');
    });
  });

  describe('JSON APIs', () => {
    it('answer errors as JSON whatever the Accept header says', async () => {
      const http = supertest(server.url);
      for (const [method, path, status] of [
        ['get', '/api/profiles/acc_nobodynobodynobodyno', 404],
        ['get', '/api/nothing-here', 404],
        ['get', '/api/profiles/me', 401],
        ['delete', '/api/profiles/me', 405],
        ['post', '/api/security-events', 405],
      ] as const) {
        for (const accept of ['text/html', '*/*', undefined]) {
          const req = http[method](path);
          const res = await (accept ? req.set('Accept', accept) : req);
          expect(res.status, `${method} ${path} (${accept})`).to.equal(status);
          expect(res.headers['content-type'], `${method} ${path} (${accept})`).to.contain('application/json');
          expect(res.body.error).to.be.a('string');
        }
      }
    });
  });

  describe('the favicon', () => {
    it('is served with caching headers and revalidates, without a refused request in the log', async () => {
      logLines.length = 0;
      const res = await supertest(server.url).get('/favicon.ico');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('image/x-icon');
      expect(res.headers['cache-control']).to.match(/^public, max-age=\d+/);
      expect(res.body.subarray(0, 4)).to.deep.equal(Buffer.from([0, 0, 1, 0])); // ICO header
      const again = await supertest(server.url).get('/favicon.ico').set('If-None-Match', res.headers.etag!);
      expect(again.status).to.equal(304);
      const svg = await supertest(server.url).get('/static/favicon.svg');
      expect(svg.status).to.equal(200);
      expect(svg.headers['content-type']).to.contain('image/svg+xml');
      expect(logLines.filter((l) => l.msg === 'request refused')).to.deep.equal([]);
      expect(logLines.filter((l) => l.msg === 'request').map((l) => l.status)).to.deep.equal([200, 304, 200]);
    });
  });
});

// Its own server, after the others: servers sharing the database re-register the internal
// account-settings client with their own address.
describe('/ in development', () => {
  it('also links to the mailbox and the discovery document and lists the registered clients', async () => {
    const dev = await startTestServer({ overrides: { devMailbox: true, seedDemo: true } });
    try {
      await createClient(dev.registry, { clientId: 'jira-demo', name: 'Jira', firstParty: true, redirectUris: ['http://localhost:4002/callback'] });
      const res = await supertest(dev.url).get('/');
      expect(res.status).to.equal(200);
      expect(linksIn(res.text)).to.include.members(['/account', '/dev/mailbox', '/.well-known/openid-configuration']);
      expect(res.text).to.match(/<strong>Jira<\/strong> <code>jira-demo<\/code> \(web\) · redirect <code>http:\/\/localhost:4002\/callback<\/code>/);
      expect(res.text, 'the internal account-settings client is not listed').not.to.contain('<code>lanyard-account</code>');
      expect((await supertest(dev.url).get('/dev/mailbox')).status).to.equal(200);
    } finally {
      await dev.close();
    }
  });
});
