import type { ClientMetadata } from 'oidc-provider';
import { AppError } from '../shared/errors.ts';
import { randomSecret } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import { FIRST_PARTY } from './provider.ts';
import type { ClientKind, ClientQueries, ClientRow } from '../persistence/queries/clients.ts';

/**
 * Relying-party clients, kept in the `clients` table and managed by the CLI.
 *
 * Three kinds (docs/flows/clients.md):
 * - web: confidential, authorization code (+ PKCE) with refresh tokens, client_secret_basic; its
 *   back end may also use client_credentials for our server-to-server APIs (each API decides
 *   which clients it answers: today /api/trello/members, for the Trello client only);
 * - native: public (RFC 8252), no secret, PKCE S256 required, refresh tokens;
 * - service: confidential, client_credentials only (machine to machine).
 * Secrets are sealed with SECRET_KEY: oidc-provider needs the plain secret to check
 * client_secret_basic and HS256, so a one-way hash would not do.
 */

export interface ClientInput {
  clientId: string;
  kind: ClientKind;
  name: string;
  redirectUris?: string[] | undefined;
  postLogoutRedirectUris?: string[] | undefined;
  backchannelLogoutUri?: string | undefined;
  firstParty?: boolean | undefined;
  /** For tests and migrations: a known secret instead of a generated one. */
  clientSecret?: string | undefined;
}

export interface ClientUpdate {
  name?: string | undefined;
  redirectUris?: string[] | undefined;
  postLogoutRedirectUris?: string[] | undefined;
  backchannelLogoutUri?: string | null | undefined;
  firstParty?: boolean | undefined;
  rotateSecret?: boolean | undefined;
}

const CLIENT_ID = /^[a-z0-9][a-z0-9._-]{1,63}$/;
/** Associated data of a client secret (also used by `secrets reseal`). */
export const sealContext = (clientId: string) => `clients:${clientId}`;

function metadataFor(kind: ClientKind, input: Pick<ClientInput, 'redirectUris' | 'postLogoutRedirectUris' | 'backchannelLogoutUri'>): Record<string, unknown> {
  const logout = {
    post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
    ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
  };
  switch (kind) {
    case 'web':
      return { redirect_uris: input.redirectUris ?? [], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', ...logout };
    case 'native':
      return { application_type: 'native', redirect_uris: input.redirectUris ?? [], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', ...logout };
    case 'service':
      return { redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' };
  }
}

/** A row as oidc-provider client metadata (OIDC Dynamic Client Registration §2 names). */
export function toProviderMetadata(row: ClientRow, box: SecretBox): ClientMetadata {
  return {
    ...row.metadata,
    client_id: row.client_id,
    client_name: row.name,
    ...(row.secret_sealed ? { client_secret: box.open(row.secret_sealed, sealContext(row.client_id)) } : {}),
    // Custom metadata (declared in extraClientMetadata): skips the consent screen.
    [FIRST_PARTY]: row.first_party,
  };
}

export function createClientService(deps: {
  clients: ClientQueries;
  box: SecretBox;
  clock: Clock;
  /** oidc-provider's own metadata validation, so the CLI refuses what the engine would. */
  validate: (metadata: ClientMetadata) => Promise<void>;
  cacheSeconds: number;
}) {
  const { clients, box, clock, validate, cacheSeconds } = deps;
  // Client lookups happen on every token request: a short in-process cache keeps them off the
  // database on the hot path. Changes made by the CLI take effect within `cacheSeconds`.
  const cache = new Map<string, { at: number; metadata: ClientMetadata | undefined }>();
  /** Clients Lanyard itself needs, with this process's own metadata (`ensureInternal`). */
  const internal = new Map<string, ClientMetadata>();

  async function checked(row: ClientRow): Promise<void> {
    try {
      await validate(toProviderMetadata(row, box));
    } catch (err) {
      const e = err as { error_description?: string; message: string };
      throw new AppError('client.invalid_metadata', 400, { message: e.error_description ?? e.message });
    }
  }

  return {
    async create(input: ClientInput): Promise<{ clientId: string; clientSecret?: string }> {
      if (!CLIENT_ID.test(input.clientId)) throw new AppError('client.invalid_id', 400, { message: 'client id: 2–64 of a-z 0-9 . _ -, starting with a letter or digit' });
      const clientSecret = input.kind === 'native' ? undefined : (input.clientSecret ?? randomSecret(32));
      const row: ClientRow = {
        client_id: input.clientId,
        kind: input.kind,
        name: input.name,
        secret_sealed: clientSecret ? box.seal(clientSecret, sealContext(input.clientId)) : null,
        first_party: input.firstParty ?? false,
        metadata: metadataFor(input.kind, input),
        created_at: new Date(clock.now()),
        updated_at: new Date(clock.now()),
      };
      await checked(row);
      if (!(await clients.insert(row))) throw new AppError('client.exists', 409, { message: `client ${input.clientId} already exists` });
      return clientSecret ? { clientId: input.clientId, clientSecret } : { clientId: input.clientId };
    },

    async update(clientId: string, change: ClientUpdate): Promise<{ clientSecret?: string }> {
      const row = await clients.find(clientId);
      if (!row) throw new AppError('client.not_found', 404, { message: `no client ${clientId}` });
      const metadata = { ...row.metadata };
      if (change.redirectUris) metadata.redirect_uris = change.redirectUris;
      if (change.postLogoutRedirectUris) metadata.post_logout_redirect_uris = change.postLogoutRedirectUris;
      if (change.backchannelLogoutUri === null) {
        delete metadata.backchannel_logout_uri;
        delete metadata.backchannel_logout_session_required;
      } else if (change.backchannelLogoutUri) {
        metadata.backchannel_logout_uri = change.backchannelLogoutUri;
        metadata.backchannel_logout_session_required = true;
      }
      const clientSecret = change.rotateSecret && row.kind !== 'native' ? randomSecret(32) : undefined;
      const next: ClientRow = {
        ...row,
        name: change.name ?? row.name,
        first_party: change.firstParty ?? row.first_party,
        metadata,
        secret_sealed: clientSecret ? box.seal(clientSecret, sealContext(clientId)) : row.secret_sealed,
      };
      await checked(next);
      await clients.update(next);
      cache.delete(clientId);
      return clientSecret ? { clientSecret } : {};
    },

    async delete(clientId: string): Promise<void> {
      if (!(await clients.delete(clientId))) throw new AppError('client.not_found', 404, { message: `no client ${clientId}` });
      cache.delete(clientId);
    },

    list: () => clients.list(),

    /**
     * A client Lanyard itself needs (the account pages), public and limited to
     * response_type=none: it only establishes the browser session, never receives a code or token.
     * Its metadata is this process's own — the redirect URI from this instance's ISSUER — and is
     * never read back from the database: a CLI run (whose ISSUER may differ or default) would
     * otherwise rewrite the row under a running server and break its sign-in. The row is only
     * inserted once, so that listings and the audit trail know the client.
     */
    async ensureInternal(clientId: string, name: string, redirectUri: string): Promise<void> {
      const metadata = { redirect_uris: [redirectUri], response_types: ['none'], grant_types: [], token_endpoint_auth_method: 'none', post_logout_redirect_uris: [] };
      const row: ClientRow = { client_id: clientId, kind: 'web', name, secret_sealed: null, first_party: true, metadata, created_at: new Date(clock.now()), updated_at: new Date(clock.now()) };
      await checked(row);
      internal.set(clientId, toProviderMetadata(row, box));
      if (!(await clients.find(clientId))) {
        try {
          await clients.insert(row);
        } catch (err) {
          // Another instance inserted it at the same moment: either row will do.
          if ((err as { code?: string }).code !== '23505') throw err;
        }
      }
    },

    /** Metadata for oidc-provider's Client adapter; undefined for an unknown client. */
    async findMetadata(clientId: string): Promise<ClientMetadata | undefined> {
      // Only ids that create() accepts can exist; anything else (a NUL, a megabyte) is not looked up.
      if (!CLIENT_ID.test(clientId)) return undefined;
      const own = internal.get(clientId);
      if (own) return own;
      const now = clock.now();
      const hit = cache.get(clientId);
      if (hit && now - hit.at < cacheSeconds * 1000) return hit.metadata;
      const row = await clients.find(clientId);
      const metadata = row ? toProviderMetadata(row, box) : undefined;
      if (cacheSeconds > 0) {
        if (cache.size > 10_000) cache.clear();
        cache.set(clientId, { at: now, metadata });
      }
      return metadata;
    },
  };
}

export type ClientService = ReturnType<typeof createClientService>;
