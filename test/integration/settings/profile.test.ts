import { expect } from 'chai';
import supertest from 'supertest';
import sharp from 'sharp';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { csrfFrom, PageDriver } from '../../helpers/login-driver.ts';
import { signInToAccount, submit } from '../../helpers/account-pages.ts';

describe('profile with per-field visibility (/account/profile, /api/profiles, claims)', () => {
  let server: TestServer;
  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  async function userinfo(email: string, firstParty: boolean) {
    const client = await createClient(server.registry, { firstParty, name: firstParty ? 'Jira' : 'Exporter' });
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid profile email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const tokens = await oidc.authorizationCodeGrant(config, await new PageDriver(server.url).authorize(url.href, { email, password: PASSWORD }), { pkceCodeVerifier: verifier });
    return { info: await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub), tokens };
  }

  it('saves fields and visibilities from the settings page, and shows others only what they may see', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const { agent } = await signInToAccount(server.url, account.email);
    const saved = await submit(agent, '/account/profile', '/account/profile', {
      name: 'Ada Lovelace', nickname: 'ada', job_title: 'Analyst', location: 'London', zoneinfo: 'Europe/London',
      'visibility[job_title]': 'anyone', 'visibility[location]': 'private', 'visibility[name]': 'anyone',
    });
    expect(saved.status, saved.text.slice(0, 400)).to.equal(303);
    expect((await agent.get(saved.headers.location!)).text).to.contain('Saved.');

    const stranger = await supertest(server.url).get(`/api/profiles/${account.id}`).accept('json');
    expect(stranger.status).to.equal(200);
    expect(stranger.body).to.deep.equal({ id: account.id, name: 'Ada Lovelace', nickname: 'ada', job_title: 'Analyst', picture: `${server.url}/avatars/${account.id}.svg` });

    const me = await agent.get('/api/profiles/me').accept('json');
    expect(me.body).to.include({ email: account.email, location: 'London', zoneinfo: 'Europe/London' });
    expect(me.body.visibility).to.include({ email: 'private', location: 'private', job_title: 'anyone' });
  });

  it('gives a refused profile form back as it was typed, with the field at fault marked', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const { agent } = await signInToAccount(server.url, account.email);
    const refused = await submit(agent, '/account/profile', '/account/profile', {
      name: 'Ada King', job_title: 'Engineer <b>', location: 'Olympus Mons', zoneinfo: 'Mars/Olympus', 'visibility[location]': 'anyone',
    });
    expect(refused.status).to.equal(400);
    expect(refused.text).to.contain('value="Ada King"').and.to.contain('value="Engineer &lt;b&gt;"').and.to.contain('value="Mars/Olympus"');
    expect(refused.text).to.match(/id="f-zoneinfo"[^>]*aria-invalid="true"/);
    expect(refused.text).not.to.match(/id="f-job_title"[^>]*aria-invalid/);
    expect(refused.text).to.contain('Not a time zone we know');
    expect(refused.text, 'the visibility chosen is kept too').to.match(/name="visibility\[location\]">\s*<option value="anyone" selected>/);
    // Nothing was stored.
    expect((await server.registry.accounts.findById(account.id))).to.include({ name: 'Ada Lovelace', job_title: null });
  });

  it('updates the profile through the JSON API with a CSRF header and refuses bad input', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    const ok = await agent.patch('/api/profiles/me').set('X-CSRF-Token', csrf).send({ department: 'Research', visibility: { email: 'anyone' } });
    expect(ok.status).to.equal(200);
    expect(ok.body).to.include({ department: 'Research' });
    expect(ok.body.visibility.email).to.equal('anyone');
    expect((await agent.patch('/api/profiles/me').send({ department: 'x' })).status, 'no CSRF header').to.equal(403);
    expect((await agent.patch('/api/profiles/me').set('X-CSRF-Token', csrf).send({ zoneinfo: 'Mars/Olympus' })).status).to.equal(400);
    expect((await agent.patch('/api/profiles/me').set('X-CSRF-Token', csrf).send({ visibility: { email: 'everyone' } })).status).to.equal(400);
    expect((await agent.patch('/api/profiles/me').set('X-CSRF-Token', csrf).send({ unknown: 1 })).status).to.equal(400);
    expect((await supertest(server.url).get('/api/profiles/me').accept('json')).status).to.equal(401);
  });

  it('releases to relying parties what they were granted, whatever the visibility, which governs only other people', async () => {
    const account = await createAccount(server.registry, { name: 'Grace Hopper' });
    const { agent } = await signInToAccount(server.url, account.email);
    await submit(agent, '/account/profile', '/account/profile', { 'visibility[email]': 'private', 'visibility[name]': 'private' });
    const first = await userinfo(account.email, true);
    expect(first.info).to.include({ email: account.email, email_verified: true, name: 'Grace Hopper' });
    const third = await userinfo(account.email, false);
    expect(third.info, 'granted on the consent page').to.include({ email: account.email, email_verified: true, name: 'Grace Hopper' });
    const stranger = await supertest(server.url).get(`/api/profiles/${account.id}`).accept('json');
    expect(stranger.body).not.to.have.any.keys('email', 'name');
  });

  it('reads your own profile with an access token', async () => {
    const account = await createAccount(server.registry);
    const { tokens } = await userinfo(account.email, true);
    const me = await supertest(server.url).get('/api/profiles/me').set('Authorization', `Bearer ${tokens.access_token}`).accept('json');
    expect(me.status).to.equal(200);
    expect(me.body).to.include({ id: account.id, email: account.email });
  });

  it('gives another company’s application no more than it was granted: its token reads no profile here', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const { tokens } = await userinfo(account.email, false);
    const bearer = `Bearer ${tokens.access_token}`;
    const me = await supertest(server.url).get('/api/profiles/me').set('Authorization', bearer).accept('json');
    expect(me.status).to.equal(403);
    expect(me.headers['www-authenticate']).to.match(/error="insufficient_scope"/);
    expect(me.body).to.include({ error: 'api.first_party_only' });
    expect(JSON.stringify(me.body)).not.to.include(account.email);
    // On someone's profile the token identifies nobody: the fields anyone may see, and the
    // email (Only you by default) is not among them, even on the person's own profile.
    const own = await supertest(server.url).get(`/api/profiles/${account.id}`).set('Authorization', bearer).accept('json');
    expect(own.status).to.equal(200);
    expect(own.body).to.include({ id: account.id, name: 'Ada Lovelace' });
    expect(own.body).not.to.have.any.keys('email', 'visibility');
  });

  it('releases a picture address the application can load whatever the visibility, which stops working when the picture changes (OIDC Core §5.1; decision 0082)', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const { agent } = await signInToAccount(server.url, account.email);
    await submit(agent, '/account/profile', '/account/profile', { 'visibility[picture]': 'private' });
    const anyone = supertest(server.url);
    expect((await anyone.get(`/avatars/${account.id}.svg`)).status, 'hidden from other people').to.equal(404);

    // The initials, as released to a third-party application (consented) and to our own product.
    for (const firstParty of [false, true]) {
      const { info, tokens } = await userinfo(account.email, firstParty);
      const released = new URL(String(info.picture));
      expect(tokens.claims()!.picture).to.equal(info.picture);
      expect(released.pathname).to.equal(`/avatars/${account.id}.svg`);
      const image = await anyone.get(released.pathname + released.search);
      expect(image.status, 'loadable by whoever holds the address').to.equal(200);
      expect(image.headers['content-type']).to.contain('image/svg+xml');
      // A key made up opens nothing.
      expect((await anyone.get(`${released.pathname}?k=${'A'.repeat(22)}`)).status).to.equal(404);
    }

    // An uploaded picture: released at its version; a new picture ends the old address.
    const upload = async (colour: string) => {
      const csrf = csrfFrom((await agent.get('/account/profile')).text);
      const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: colour } }).png().toBuffer();
      expect((await agent.post(`/account/avatar?_csrf=${encodeURIComponent(csrf)}`).attach('picture', photo, 'me.png')).status).to.equal(303);
    };
    await upload('#3366cc');
    const first = new URL(String((await userinfo(account.email, false)).info.picture));
    expect(first.pathname).to.equal(`/avatars/${account.id}-256.webp`);
    expect((await anyone.get(first.pathname + first.search)).status).to.equal(200);
    expect((await anyone.get(`/avatars/${account.id}-48.webp${first.search}`)).status, 'every stored size').to.equal(200);
    expect((await anyone.get(`${first.pathname}?v=${first.searchParams.get('v')}`)).status, 'without the key: hidden').to.equal(404);
    await upload('#cc6633');
    expect((await anyone.get(first.pathname + first.search)).status, 'the old picture’s address').to.equal(404);
    const second = new URL(String((await userinfo(account.email, false)).info.picture));
    expect(second.search).not.to.equal(first.search);
    expect((await anyone.get(second.pathname + second.search)).status).to.equal(200);
  });

  it('serves the initials avatar unless the picture is hidden from the viewer', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const svg = await supertest(server.url).get(`/avatars/${account.id}.svg`).buffer(true).parse((res, cb) => { let d = ''; res.on('data', (c: Buffer) => { d += c; }); res.on('end', () => cb(null, d)); });
    expect(svg.status).to.equal(200);
    expect(svg.headers['content-type']).to.contain('image/svg+xml');
    expect(svg.body).to.contain('>AL</text>');
    const { agent } = await signInToAccount(server.url, account.email);
    await submit(agent, '/account/profile', '/account/profile', { 'visibility[picture]': 'private' });
    expect((await supertest(server.url).get(`/avatars/${account.id}.svg`)).status).to.equal(404);
    expect((await agent.get(`/avatars/${account.id}.svg`)).status, 'the person still sees it').to.equal(200);
    expect((await supertest(server.url).get('/avatars/acc_nope.svg')).status).to.equal(404);
  });
});
