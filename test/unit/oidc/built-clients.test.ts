import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { type Adapter, type ClientMetadata } from 'oidc-provider';
import { reuseBuiltClients } from '../../../src/oidc/built-clients.ts';

/** A real engine whose clients come from `lookup`, through the Client adapter and our reuse, as in src/oidc/provider.ts. */
function engineWith(lookup: (id: string) => ClientMetadata | undefined) {
  const calls = { adapter: 0 };
  class ClientAdapter implements Partial<Adapter> {
    async find(id: string) { calls.adapter += 1; return lookup(id) as never; }
  }
  const provider = new Provider('http://127.0.0.1:1', {
    adapter: (name: string) => (name === 'Client' ? new ClientAdapter() : undefined) as never,
    clients: [],
    jwks: { keys: [{ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'test' }] } as never,
    features: { devInteractions: { enabled: false } },
  });
  reuseBuiltClients(provider);
  return { provider, calls };
}

const web = (redirect: string): ClientMetadata => ({ client_id: 'jira', client_secret: 'a-secret-of-enough-length-0123456789', redirect_uris: [redirect], grant_types: ['authorization_code'], response_types: ['code'], id_token_signed_response_alg: 'ES256' });

describe('built clients (the engine’s Client instance reused while the metadata object is the same)', () => {
  it('answers the same instance without asking the engine again while the cache hands out the same metadata', async () => {
    const metadata = web('https://jira.example/cb');
    const { provider, calls } = engineWith((id) => (id === 'jira' ? metadata : undefined));
    const first = await provider.Client.find('jira');
    expect(first?.clientId).to.equal('jira');
    expect(calls.adapter, 'our read, then the engine’s own').to.equal(2);
    const again = await provider.Client.find('jira');
    expect(again).to.equal(first);
    // The adapter is read each time (our cache behind it decides when a client changed); the
    // engine's own find, which reads it a second time and hashes the metadata, ran only once.
    expect(calls.adapter, 'the engine’s own find (serialising and hashing the metadata) ran again').to.equal(3);
  });

  it('builds a new instance once the cache hands out changed metadata, and the change takes effect', async () => {
    let metadata = web('https://jira.example/cb');
    const { provider } = engineWith(() => metadata);
    const before = await provider.Client.find('jira');
    expect(before?.redirectUriAllowed('https://jira.example/new')).to.equal(false);
    metadata = web('https://jira.example/new');
    const after = await provider.Client.find('jira');
    expect(after).to.not.equal(before);
    expect(after?.redirectUriAllowed('https://jira.example/new')).to.equal(true);
  });

  it('leaves unknown, empty and malformed ids to the engine, which finds nothing', async () => {
    const { provider } = engineWith(() => undefined);
    expect(await provider.Client.find('nobody')).to.equal(undefined);
    expect(await provider.Client.find('')).to.equal(undefined);
    expect(await provider.Client.find(42 as unknown as string)).to.equal(undefined);
  });

  it('answers what the engine’s adapter throws, as the engine’s own find does (an outage stays the protocol’s error)', async () => {
    const outage = new Error('the adapter’s own error');
    const { provider } = engineWith(() => { throw outage; });
    let thrown: unknown;
    try { await provider.Client.find('jira'); } catch (err) { thrown = err; }
    expect(thrown).to.equal(outage);
  });

  it('still refuses metadata the engine finds invalid, every time it is asked', async () => {
    const invalid = { client_id: 'broken', redirect_uris: ['not a url'] } as ClientMetadata;
    const { provider } = engineWith(() => invalid);
    for (let i = 0; i < 2; i += 1) {
      let thrown: unknown;
      try { await provider.Client.find('broken'); } catch (err) { thrown = err; }
      expect((thrown as { message?: string } | undefined)?.message).to.equal('invalid_client_metadata');
    }
  });
});
