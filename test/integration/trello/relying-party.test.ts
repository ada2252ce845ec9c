import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import * as oidc from 'openid-client';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount, createClient, PASSWORD } from '../../helpers/factories.ts';
import { PageDriver } from '../../helpers/login-driver.ts';
import { importLegacy, legacyMember } from '../../helpers/trello.ts';
import { SIGNATURE_HEADER } from '../../../src/legacy-trello/link-webhook.ts';

/** A webhook receiver on 127.0.0.1 that answers with the statuses queued in `answers` (then 204). */
async function startWebhookReceiver() {
  const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const answers: number[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = answers.shift() ?? 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/lanyard`, received, answers, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('legacy Trello accounts: what the Trello relying party gets', () => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let now = Date.now();

  beforeEach(async () => {
    await resetDatabase();
    now = Date.now();
    receiver = await startWebhookReceiver();
    server = await startTestServer({ clock: { now: () => now }, overrides: { trello: { clientId: 'trello', webhookUrl: receiver.url } } });
  });
  afterEach(async () => {
    await server.close();
    await receiver.close();
  });

  async function tokensFor(client: { clientId: string; clientSecret?: string | undefined; redirectUri: string }, email: string, password = PASSWORD) {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: client.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return oidc.authorizationCodeGrant(config, await new PageDriver(server.url).authorize(url.href, { email, password }), { pkceCodeVerifier: verifier });
  }

  async function serviceToken(client: { clientId: string; clientSecret?: string | undefined }) {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    return (await oidc.clientCredentialsGrant(config)).access_token;
  }

  it('puts the Trello member id in the ID token for the Trello client only', async () => {
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const linked = await server.registry.trello.linking.link({ memberId: member.id, email: member.emails[0]!.address, method: 'bulk' });
    if (!linked.ok) throw new Error(linked.problem);
    // Bulk-linked accounts have no password; give this one a password to log in with.
    await server.registry.db.query('UPDATE accounts SET password_hash = $2 WHERE id = $1', [linked.account.id, await server.registry.hasher.hash(PASSWORD)]);

    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const jira = await createClient(server.registry, { clientId: 'jira', firstParty: true, name: 'Jira' });
    expect((await tokensFor(trello, member.emails[0]!.address)).claims()?.trello_member_id).to.equal(member.id);
    expect((await tokensFor(jira, member.emails[0]!.address)).claims()).not.to.have.property('trello_member_id');

    const plain = await createAccount(server.registry);
    expect((await tokensFor(trello, plain.email)).claims()).not.to.have.property('trello_member_id');
  });

  it('answers Trello’s server-to-server question per member id and per address', async () => {
    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const open = legacyMember({ emails: [{ address: 'open@example.com', verified: true }] });
    const done = legacyMember({ emails: [{ address: 'kept@example.com', verified: true, primary: true }, { address: 'gone@example.com', verified: true }] });
    await importLegacy(server.registry, [open, done]);
    const linked = await server.registry.trello.linking.link({ memberId: done.id, email: 'kept@example.com', method: 'bulk' });
    const accountId = linked.ok ? linked.account.id : '';
    const token = await serviceToken(trello);
    const ask = (query: string) => supertest(server.url).get(`/api/trello/members?${query}`).set('Authorization', `Bearer ${token}`).set('Accept', 'application/json');

    expect((await ask(`member_id=${open.id}`)).body).to.deep.equal({ status: 'unlinked', member_id: open.id });
    expect((await ask(`member_id=${done.id}`)).body).to.deep.equal({ status: 'linked', member_id: done.id, account_id: accountId });
    expect((await ask('email=OPEN@example.com')).body).to.deep.equal({ status: 'unlinked', member_id: open.id });
    expect((await ask('email=kept@example.com')).body).to.deep.equal({ status: 'linked', member_id: done.id, account_id: accountId });
    expect((await ask('email=gone@example.com')).body).to.deep.equal({ status: 'retired', account_id: accountId, use_email: 'kept@example.com' });
    const unknown = await ask('member_id=nope');
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.deep.equal({ status: 'unknown' });
    expect((await ask('')).status).to.equal(400);
    expect((await ask(`member_id=${open.id}&email=open@example.com`)).status).to.equal(400);
  });

  it('resolves an address to a member only while the member still owns it', async () => {
    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const member = legacyMember({ emails: [
      { address: 'kept@example.com', verified: true, primary: true },
      { address: 'retired@example.com', verified: true },
      { address: 'dropped@example.com', verified: false },
    ] });
    // An unlinked member whose unverified address somebody else has an account with.
    const open = legacyMember({ emails: [{ address: 'open@example.com', verified: true, primary: true }, { address: 'claimed@example.com', verified: false }] });
    await importLegacy(server.registry, [member, open]);
    const linked = await server.registry.trello.linking.link({ memberId: member.id, email: 'kept@example.com', method: 'bulk' });
    if (!linked.ok) throw new Error(linked.problem);
    // Another person registers the address dropped at linking, and one the open member never verified.
    const stranger = await createAccount(server.registry, { email: 'dropped@example.com' });
    await createAccount(server.registry, { email: 'claimed@example.com' });
    const token = await serviceToken(trello);
    const ask = (query: string) => supertest(server.url).get(`/api/trello/members?${query}`).set('Authorization', `Bearer ${token}`).set('Accept', 'application/json');

    expect((await ask('email=kept@example.com')).body).to.deep.equal({ status: 'linked', member_id: member.id, account_id: linked.account.id });
    expect((await ask('email=retired@example.com')).body).to.deep.include({ status: 'retired', account_id: linked.account.id });
    const dropped = await ask('email=dropped@example.com');
    expect(dropped.status, 'the dropped address is the stranger’s now').to.equal(404);
    expect(dropped.body).to.deep.equal({ status: 'unknown' });
    expect((await ask('email=claimed@example.com')).status).to.equal(404);
    expect((await ask('email=open@example.com')).body).to.deep.equal({ status: 'unlinked', member_id: open.id });

    // The account moves to a new address: that one leads to the member, the old one no longer.
    await server.registry.db.query('UPDATE accounts SET email = $2 WHERE id = $1', [linked.account.id, 'moved@example.com']);
    expect((await ask('email=moved@example.com')).body).to.deep.equal({ status: 'linked', member_id: member.id, account_id: linked.account.id });
    expect((await ask('email=kept@example.com')).status).to.equal(404);
    expect(stranger.id).to.be.a('string');

    // Nor does the webhook name an address the member no longer owns.
    await server.registry.trello.webhook.deliverDue();
    const body = JSON.parse(receiver.received.at(-1)!.body);
    expect(body).to.deep.include({ member_id: member.id, email: 'moved@example.com', retired_emails: ['retired@example.com'] });
    expect(receiver.received.at(-1)!.body).not.to.contain('dropped@example.com');
  });

  it('answers an unlink request with what is true of the member', async () => {
    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const open = legacyMember();
    const done = legacyMember();
    await importLegacy(server.registry, [open, done]);
    await server.registry.trello.linking.link({ memberId: done.id, email: done.emails[0]!.address, method: 'bulk' });
    const token = await serviceToken(trello);
    const unlink = (id: string) => supertest(server.url).delete(`/api/trello/members/${id}/link`).set('Authorization', `Bearer ${token}`).set('Accept', 'application/json');
    const never = await unlink(open.id);
    expect(never.status).to.equal(409);
    expect(never.body).to.deep.include({ error: 'trello.not_linked' });
    expect(never.body.message).not.to.contain('for good');
    const linked = await unlink(done.id);
    expect(linked.status).to.equal(409);
    expect(linked.body).to.deep.include({ error: 'trello.link_irreversible' });
    expect((await unlink('nobody')).status).to.equal(404);
  });

  it('refuses other clients, user tokens and anonymous callers', async () => {
    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const other = await createClient(server.registry, { clientId: 'bitbucket', firstParty: true, name: 'Bitbucket' });
    const anonymous = await supertest(server.url).get('/api/trello/members?member_id=x').set('Accept', 'application/json');
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers['www-authenticate']).to.contain('invalid_token');
    const foreign = await supertest(server.url).get('/api/trello/members?member_id=x').set('Authorization', `Bearer ${await serviceToken(other)}`).set('Accept', 'application/json');
    expect(foreign.status).to.equal(403);
    // A user's access token of the Trello client is not the client's own credentials.
    const account = await createAccount(server.registry);
    const userToken = (await tokensFor(trello, account.email)).access_token;
    expect((await supertest(server.url).get('/api/trello/members?member_id=x').set('Authorization', `Bearer ${userToken}`)).status).to.equal(401);
  });

  it('posts a signed "member linked" event to Trello, retrying until it is accepted', async () => {
    const trello = await createClient(server.registry, { clientId: 'trello', firstParty: true, name: 'Trello' });
    const member = legacyMember();
    await importLegacy(server.registry, [member]);
    const linked = await server.registry.trello.linking.link({ memberId: member.id, email: member.emails[0]!.address, method: 'bulk' });
    receiver.answers.push(503);

    expect(await server.registry.trello.webhook.deliverDue()).to.equal(1);
    expect(receiver.received).to.have.length(1);
    const [failed] = await server.registry.trello.linkEvents.linkEvents(member.id);
    expect(failed).to.include({ attempts: 1, delivered_at: null, last_error: 'HTTP 503' });

    // Not due again until the backoff has passed.
    expect(await server.registry.trello.webhook.deliverDue()).to.equal(0);
    now += 31_000;
    expect(await server.registry.trello.webhook.deliverDue()).to.equal(1);
    const [delivered] = await server.registry.trello.linkEvents.linkEvents(member.id);
    expect(delivered!.delivered_at).to.be.instanceOf(Date);

    const last = receiver.received.at(-1)!;
    const body = JSON.parse(last.body);
    expect(body).to.deep.include({ type: 'member.linked', member_id: member.id, account_id: linked.ok ? linked.account.id : '' });
    const signature = String(last.headers[SIGNATURE_HEADER.toLowerCase()]);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature)!;
    expect(v1).to.equal(createHmac('sha256', trello.clientSecret!).update(`${t}.${last.body}`).digest('hex'));
    expect(Number(t)).to.be.closeTo(now / 1000, 5);
    expect(await server.registry.trello.webhook.deliverDue()).to.equal(0);
  });
});
