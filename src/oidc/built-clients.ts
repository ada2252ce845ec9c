import type Provider from 'oidc-provider';
import type { Adapter, ClientMetadata } from 'oidc-provider';

type EngineClient = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

/**
 * Keeps the engine's Client instance for as long as our client cache hands out the same metadata
 * object (src/oidc/clients.ts, `findMetadata`, read through the engine's own Client adapter), so
 * a request that names a client does no more than a map lookup.
 *
 * Why: for clients that come from an adapter, oidc-provider's `Client.find` serialises the
 * metadata and hashes it (SHA-256) on every call to find the instance it built from it, and keeps
 * at most 100 such instances (an LRU): past 100 clients in use, most calls validate and build an
 * instance anew. Every token, userinfo and introspection request finds its client at least once.
 * Measured (issue 14, docs/benchmarks.md): 1.7–1.9 µs a find with one client, 17–21 µs with 150
 * clients in turn; under 0.5 µs either way with this. The engine's documented hooks offer no
 * other way than replacing the static `find` of this provider's own Client class (each Provider
 * instance has its own), which is what this does (decision 0066), keeping the engine's `find`
 * for everything it decides: unknown ids, metadata documents, building and validating the
 * instance.
 *
 * A changed client is a new metadata object once the cache has read the new row (after at most
 * CLIENT_CACHE_SECONDS, as before): the engine builds its instance then, and the old one is
 * garbage with the old object. With CLIENT_CACHE_SECONDS=0 every lookup would be a new object,
 * nothing would be reused and each find would read the client twice (ours, then the engine's):
 * src/oidc/provider.ts installs this only when the cache is on.
 */
export function reuseBuiltClients(provider: Provider): void {
  const Client = provider.Client;
  const engineFind = Client.find.bind(Client);
  // The adapter the engine itself reads clients through (the configured one, with its outage
  // handling: a database outage is the protocol's temporarily_unavailable, src/oidc/unavailable.ts).
  const adapter = (Client as unknown as { adapter: Adapter }).adapter;
  const built = new WeakMap<ClientMetadata, EngineClient>();
  Client.find = async (id: string) => {
    const metadata = typeof id === 'string' && id ? await adapter.find(id) as ClientMetadata | undefined : undefined;
    if (!metadata) return engineFind(id);
    const known = built.get(metadata);
    if (known) return known;
    const client = await engineFind(id);
    if (client) built.set(metadata, client);
    return client;
  };
}
