import { expect } from 'chai';
import sharp from 'sharp';
import supertest from 'supertest';
import { request } from 'node:http';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { signInToAccount, type Agent } from '../../helpers/account-pages.ts';

/** supertest parser that keeps the body as bytes. */
const binary = (res: unknown, cb: (err: Error | null, body: Buffer) => void) => {
  const stream = res as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => cb(null, Buffer.concat(chunks)));
};

describe('profile picture upload (/account/avatar)', () => {
  let server: TestServer;
  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(async () => server.close());

  async function upload(agent: Agent, file: Buffer, name = 'me.png') {
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    return agent.post(`/account/avatar?_csrf=${encodeURIComponent(csrf)}`).attach('picture', file, name);
  }

  it('stores an uploaded picture at fixed sizes as WebP and points the picture claim at it', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const photo = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
    const res = await upload(agent, photo, 'photo.jpg');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal('/account/profile?avatar=saved');

    const row = await server.registry.accounts.findById(account.id);
    expect(row!.picture).to.match(new RegExp(`^${server.url}/avatars/${account.id}-256\\.webp\\?v=`));
    for (const size of [48, 128, 256]) {
      const image = await supertest(server.url).get(`/avatars/${account.id}-${size}.webp`).buffer(true).parse(binary);
      expect(image.status).to.equal(200);
      expect(image.headers['content-type']).to.equal('image/webp');
      const meta = await sharp(image.body as Buffer).metadata();
      expect(meta).to.include({ format: 'webp', width: size, height: size });
    }
    const me = await agent.get('/api/profiles/me').accept('json');
    expect(me.body.picture).to.equal(row!.picture);
  });

  it('refuses what is not an image, without changing anything', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const res = await upload(agent, Buffer.from('<svg onload="alert(1)"></svg>'), 'evil.svg');
    expect(res.headers.location).to.equal('/account/profile?avatar=avatar.invalid');
    const page = await agent.get(res.headers.location!);
    expect(page.text).to.contain('That picture can’t be used');
    expect((await server.registry.accounts.findById(account.id))!.picture).to.equal(null);
  });

  it('asks for a picture when the form is sent without one', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    // What a browser sends for an empty file input: the part, with no name and no bytes.
    const empty = await agent.post(`/account/avatar?_csrf=${encodeURIComponent(csrf)}`).attach('picture', Buffer.alloc(0), '');
    const none = await agent.post(`/account/avatar?_csrf=${encodeURIComponent(csrf)}`).type('form').field('other', 'x');
    for (const res of [empty, none]) {
      expect(res.status).to.equal(303);
      expect(res.headers.location).to.equal('/account/profile?avatar=avatar.missing');
    }
    expect((await agent.get('/account/profile?avatar=avatar.missing')).text).to.contain('Choose a picture first');
  });

  it('refuses files over 5 MB with a clear message', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const res = await upload(agent, Buffer.alloc(5 * 1024 * 1024 + 10, 1), 'huge.png');
    expect(res.headers.location).to.equal('/account/profile?avatar=avatar.too_large');
  });

  it('requires a CSRF token in the action URL and a session', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const png = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000' } }).png().toBuffer();
    expect((await agent.post('/account/avatar').attach('picture', png, 'a.png')).status).to.equal(403);
    // The form's token in the body is not read: the decision is made before the body.
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    expect((await agent.post('/account/avatar').field('_csrf', csrf).attach('picture', png, 'a.png')).status).to.equal(403);
    const anonymous = supertest.agent(server.url);
    const anonymousCsrf = csrfFrom((await anonymous.get('/password/forgot')).text);
    expect((await anonymous.post(`/account/avatar?_csrf=${encodeURIComponent(anonymousCsrf)}`).attach('picture', png, 'a.png')).status).to.equal(401);
    expect((await server.registry.accounts.findById(account.id))!.picture).to.equal(null);
  });

  it('refuses an anonymous upload on its headers, before the client has sent the body', async () => {
    // Only the first 64 KB of a 5 MB body go out; the rest would follow the answer. A server that
    // read (or buffered) the body before deciding would never answer, and the test would say so.
    const anonymous = supertest.agent(server.url);
    const csrf = csrfFrom((await anonymous.get('/password/forgot')).text);
    const cookie = (await anonymous.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false })).map((c) => `${c.name}=${c.value}`).join('; ');
    for (const [path, headers, expected] of [
      [`/account/avatar?_csrf=${encodeURIComponent(csrf)}`, { cookie }, 401],
      ['/account/avatar', {}, 403],
    ] as const) {
      const outcome = await new Promise<{ status: number; beforeBody: boolean }>((resolve, reject) => {
        let bodySent = false;
        const req = request(`${server.url}${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(5 * 1024 * 1024) } }, (res) => {
          res.resume();
          resolve({ status: res.statusCode!, beforeBody: !bodySent });
          req.destroy();
        });
        req.on('error', (err) => (bodySent ? undefined : reject(err)));
        req.write(Buffer.alloc(64 * 1024, 0x61));
        const fallback = setTimeout(() => {
          bodySent = true;
          req.end(Buffer.alloc(5 * 1024 * 1024 - 64 * 1024, 0x61));
        }, 10_000);
        req.on('close', () => clearTimeout(fallback));
      });
      expect(outcome).to.deep.equal({ status: expected, beforeBody: true });
    }
  });

  it('answers a malformed multipart body with 400, never a server error', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const csrf = encodeURIComponent(csrfFrom((await agent.get('/account/profile')).text));
    const noBoundary = await agent.post(`/account/avatar?_csrf=${csrf}`).set('content-type', 'multipart/form-data').send('x');
    expect(noBoundary.status).to.equal(400);
    const truncated = await agent.post(`/account/avatar?_csrf=${csrf}`).set('content-type', 'multipart/form-data; boundary=xx').send('--xx\r\ngarbage');
    expect(truncated.status).to.equal(400);
    const extraFields = await agent.post(`/account/avatar?_csrf=${csrf}`).field('a', '1').field('b', '2').field('c', '3');
    expect(extraFields.status).to.equal(400);
    const wrongField = await agent.post(`/account/avatar?_csrf=${csrf}`).attach('other', Buffer.from('x'), 'x.png');
    expect(wrongField.status).to.equal(400);
    const gzip = await agent.post(`/account/avatar?_csrf=${csrf}`).set('content-encoding', 'gzip').attach('picture', Buffer.from('x'), 'x.png');
    expect(gzip.status).to.equal(415);
    expect((await server.registry.accounts.findById(account.id))!.picture).to.equal(null);
  });

  it('removes the picture and falls back to the initials', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    await upload(agent, await sharp({ create: { width: 50, height: 50, channels: 3, background: '#fff' } }).png().toBuffer());
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    const removed = await agent.post(`/account/avatar/remove?_csrf=${encodeURIComponent(csrf)}`);
    expect(removed.headers.location).to.equal('/account/profile?avatar=removed');
    expect((await server.registry.accounts.findById(account.id))!.picture).to.equal(null);
    expect((await supertest(server.url).get(`/avatars/${account.id}-128.webp`)).status).to.equal(404);
    expect((await agent.get('/api/profiles/me').accept('json')).body.picture).to.equal(`${server.url}/avatars/${account.id}.svg`);
  });
});
