import { expect } from 'chai';
import supertest from 'supertest';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createClient } from '../../helpers/factories.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Clients as production caches them (CLIENT_CACHE_SECONDS > 0; the other tests run with 0): the
 * engine's Client instance is reused while the cache hands out the same metadata (decision 0066),
 * and a change made elsewhere — the CLI, another instance — takes effect once the cache has read
 * the row again, not later.
 */
describe('clients cached in-process, their engine instances reused (decision 0066)', () => {
  let now = Date.now();
  const clock = { now: () => now };
  let cached: TestServer;
  let elsewhere: TestServer;

  before(async () => {
    await resetDatabase();
    cached = await startTestServer({ overrides: { clientCacheSeconds: 5 }, clock });
    elsewhere = await startTestServer();
  });
  after(async () => {
    await cached?.close();
    await elsewhere?.close();
  });

  const token = (id: string, secret: string) => supertest(cached.url).post('/token')
    .set('Authorization', basic(id, secret)).type('form').send({ grant_type: 'client_credentials' });

  it('reuses the instance while the client is unchanged, and applies a rotated secret within the cache’s bound', async () => {
    const client = await createClient(cached.registry, { kind: 'service', name: 'Trello backend' });
    expect((await token(client.clientId, client.clientSecret!)).status).to.equal(200);
    const first = await cached.registry.provider.Client.find(client.clientId);
    expect(await cached.registry.provider.Client.find(client.clientId)).to.equal(first);
    expect((await token(client.clientId, client.clientSecret!)).status).to.equal(200);

    // Rotated by another process: this one still holds the old metadata for up to 5 seconds…
    const { clientSecret: rotated } = await elsewhere.registry.clients.update(client.clientId, { rotateSecret: true });
    expect((await token(client.clientId, client.clientSecret!)).status).to.equal(200);
    expect((await token(client.clientId, rotated!)).status).to.equal(401);

    // …and none after: the old secret is refused, the new one accepted, by a new instance.
    now += 6_000;
    const refused = await token(client.clientId, client.clientSecret!);
    expect(refused.status).to.equal(401);
    expect(refused.body).to.include({ error: 'invalid_client' });
    expect((await token(client.clientId, rotated!)).status).to.equal(200);
    expect(await cached.registry.provider.Client.find(client.clientId)).to.not.equal(first);
  });

  it('stops finding a client deleted elsewhere once the cache has read again', async () => {
    const client = await createClient(cached.registry, { kind: 'service', name: 'Old exporter' });
    expect((await token(client.clientId, client.clientSecret!)).status).to.equal(200);
    await elsewhere.registry.clients.delete(client.clientId);
    now += 6_000;
    const refused = await token(client.clientId, client.clientSecret!);
    expect(refused.status).to.equal(401);
    expect(refused.body).to.include({ error: 'invalid_client' });
    expect(await cached.registry.provider.Client.find(client.clientId)).to.equal(undefined);
  });
});
