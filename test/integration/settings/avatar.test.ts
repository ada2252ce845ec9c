import { expect } from 'chai';
import sharp from 'sharp';
import supertest from 'supertest';
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
    return agent.post('/account/avatar').field('_csrf', csrf).attach('picture', file, name);
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

  it('refuses files over 5 MB with a clear message', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const res = await upload(agent, Buffer.alloc(5 * 1024 * 1024 + 10, 1), 'huge.png');
    expect(res.headers.location).to.equal('/account/profile?avatar=avatar.too_large');
  });

  it('requires a CSRF token and a session', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    const png = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000' } }).png().toBuffer();
    expect((await agent.post('/account/avatar').attach('picture', png, 'a.png')).status).to.equal(403);
    const anonymous = supertest.agent(server.url);
    const csrf = csrfFrom((await anonymous.get('/password/forgot')).text);
    expect((await anonymous.post('/account/avatar').field('_csrf', csrf).attach('picture', png, 'a.png')).status).to.equal(401);
  });

  it('removes the picture and falls back to the initials', async () => {
    const account = await createAccount(server.registry);
    const { agent } = await signInToAccount(server.url, account.email);
    await upload(agent, await sharp({ create: { width: 50, height: 50, channels: 3, background: '#fff' } }).png().toBuffer());
    const csrf = csrfFrom((await agent.get('/account/profile')).text);
    const removed = await agent.post('/account/avatar/remove').field('_csrf', csrf);
    expect(removed.headers.location).to.equal('/account/profile?avatar=removed');
    expect((await server.registry.accounts.findById(account.id))!.picture).to.equal(null);
    expect((await supertest(server.url).get(`/avatars/${account.id}-128.webp`)).status).to.equal(404);
    expect((await agent.get('/api/profiles/me').accept('json')).body.picture).to.equal(`${server.url}/avatars/${account.id}.svg`);
  });
});
