import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { sha256 } from '../shared/crypto.ts';
import { containsNul } from '../shared/nul.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { OidcPayloadQueries } from '../persistence/queries/oidc-payloads.ts';

/**
 * oidc-provider's storage adapter on PostgreSQL (one table, `oidc_payloads`).
 *
 * Bearer values are never stored: the row key is SHA-256 of the model id (which is the token,
 * code or session cookie value itself), `jti` is removed from the stored payload and put back
 * from the id the caller presents, and the session cookie value that Interactions carry is not
 * kept (oidc-provider does not read it back). Expiry uses the injected clock, so rows the
 * engine considers expired are never returned even before the sweeper deletes them.
 *
 * `Session.findByUid` (used to check session-bound tokens and interactions) gets the payload
 * without its jti: the engine only reads such sessions, it never saves them.
 */
export function createPostgresAdapter(queries: OidcPayloadQueries, clock: Clock) {
  const now = () => new Date(clock.now());
  // A NUL can only come from a request parameter, and PostgreSQL can store it neither in text
  // nor in jsonb: a lookup finds nothing, and a payload to store is the client's invalid_request
  // (RFC 6749 §5.2), which the engine answers in the protocol's way.
  const hasNul = (value: string) => value.includes('\0');

  const restore = (id: string | undefined, row: { payload: Record<string, unknown>; consumed_at: Date | null } | undefined): AdapterPayload | undefined => {
    if (!row) return undefined;
    // The driver parsed the jsonb into a fresh object for this call alone: no copy needed.
    const payload = row.payload as AdapterPayload;
    if (id !== undefined) payload.jti = id;
    if (row.consumed_at) payload.consumed = Math.floor(row.consumed_at.getTime() / 1000);
    return payload;
  };

  return class PostgresAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (hasNul(id) || containsNul(payload)) throw new errors.InvalidRequest('parameters must not contain NUL characters');
      const { jti: _jti, ...stored } = payload;
      if (this.model === 'Interaction' && stored.session && typeof stored.session === 'object') {
        const { cookie: _cookie, ...session } = stored.session as Record<string, unknown>;
        stored.session = session as AdapterPayload['session'];
      }
      await queries.upsert({
        model: this.model,
        idHash: sha256(id),
        payload: stored as Record<string, unknown>,
        grantId: typeof payload.grantId === 'string' ? payload.grantId : null,
        sessionUid: this.model === 'Session' && typeof payload.uid === 'string' ? payload.uid : null,
        userCodeHash: typeof payload.userCode === 'string' ? sha256(payload.userCode) : null,
        accountId: typeof payload.accountId === 'string' ? payload.accountId : null,
        expiresAt: expiresIn ? new Date(clock.now() + expiresIn * 1000) : null,
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (hasNul(id)) return undefined;
      return restore(id, await queries.find(this.model, sha256(id), now()));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      if (hasNul(uid)) return undefined;
      return restore(undefined, await queries.findBySessionUid(this.model, uid, now()));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      if (hasNul(userCode)) return undefined;
      // Only the device flow looks codes up this way, and it is not enabled (it would need the
      // DeviceCode's id kept in clear: see docs/decisions/0004-hashed-protocol-artifacts.md).
      return restore(undefined, await queries.findByUserCodeHash(this.model, sha256(userCode), now()));
    }

    async consume(id: string): Promise<void> {
      await queries.consume(this.model, sha256(id), now());
    }

    async destroy(id: string): Promise<void> {
      await queries.destroy(this.model, sha256(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      if (hasNul(grantId)) return;
      await queries.revokeByGrantId(this.model, grantId);
    }
  };
}

/**
 * Deletes expired engine rows in batches of 500 (at most 20 per call): small batches keep locks
 * short while requests run, and lookups already ignore expired rows. Returns how many went.
 */
export async function sweepExpiredPayloads(deps: { queries: OidcPayloadQueries; clock: Clock; logger: Logger }): Promise<number> {
  let removed = 0;
  for (let batch = 0; batch < 20; batch += 1) {
    const n = await deps.queries.sweepExpired(new Date(deps.clock.now()), 500);
    removed += n;
    if (n < 500) break;
  }
  if (removed) deps.logger.debug({ removed }, 'expired protocol rows swept');
  return removed;
}
