import type { Registry } from '../../src/registry.ts';
import type { ClientInput } from '../../src/oidc/clients.ts';

export const PASSWORD = 'correct horse battery staple';

let counter = 0;
const unique = () => `${Date.now().toString(36)}${(counter += 1)}`;

export async function createAccount(registry: Registry, fields: { email?: string; password?: string; name?: string } = {}) {
  return registry.accounts.create({
    email: fields.email ?? `user-${unique()}@example.com`,
    password: fields.password ?? PASSWORD,
    name: fields.name ?? 'Ada Lovelace',
    emailVerified: true,
  });
}

export async function createClient(registry: Registry, input: Partial<ClientInput> & { redirectUris?: string[] } = {}) {
  const clientId = input.clientId ?? `client-${unique()}`;
  const created = await registry.clients.create({
    clientId,
    kind: input.kind ?? 'web',
    name: input.name ?? 'Test App',
    redirectUris: input.redirectUris ?? ['http://127.0.0.1:9/callback'],
    postLogoutRedirectUris: input.postLogoutRedirectUris ?? ['http://127.0.0.1:9/'],
    backchannelLogoutUri: input.backchannelLogoutUri,
    firstParty: input.firstParty ?? false,
    clientSecret: input.clientSecret,
  });
  return { clientId, clientSecret: created.clientSecret, redirectUri: (input.redirectUris ?? ['http://127.0.0.1:9/callback'])[0]! };
}
