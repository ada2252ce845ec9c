import type { DeferredWrite, Queryable } from '../db.ts';

export interface StoredPayload {
  payload: Record<string, unknown>;
  consumed_at: Date | null;
}

export interface PayloadWrite {
  model: string;
  idHash: string;
  payload: Record<string, unknown>;
  grantId: string | null;
  sessionUid: string | null;
  userCodeHash: string | null;
  accountId: string | null;
  expiresAt: Date | null;
}

/** A write the adapter may defer to the end of a request (src/oidc/adapter.ts, `createWriteBehind`). */
export type PayloadOp =
  | { kind: 'upsert'; write: PayloadWrite }
  | { kind: 'consume'; model: string; idHash: string; now: Date }
  | { kind: 'destroy'; model: string; idHash: string }
  /** A write of another table that rides in the same batch (`Defer` in src/persistence/db.ts). */
  | { kind: 'joined'; write: DeferredWrite };

/** `write`'s SQL with its parameters renumbered to follow `offset` others (one statement of several parts). */
function renumbered(write: DeferredWrite, offset: number): string {
  return write.sql.replace(/\$(\d+)/g, (_, n: string) => `$${offset + Number(n)}`);
}

/** Rows of one kind a batch passes as `VALUES` of scalar parameters; more go as arrays (`writeBatch`). */
export const VALUES_ROWS = 4;

type LookupColumn = 'id_hash' | 'session_uid' | 'user_code_hash';

/**
 * The lookups' texts, built once: a text built per call is a new string each time, which the
 * embedded engine's statement names (decision 0062) hash again on every lookup.
 */
const FIND_LIVE: Record<LookupColumn, string> = Object.fromEntries((['id_hash', 'session_uid', 'user_code_hash'] as const).map((column) => [column,
  `SELECT payload, consumed_at FROM oidc_payloads
       WHERE ${column} = $2 AND model = $1 AND (expires_at IS NULL OR expires_at > $3)`])) as Record<LookupColumn, string>;

/**
 * A token's row, and what the engine reads next about it, read in the same statement (src/oidc/adapter.ts,
 * "read ahead"): its grant by id, and its session by uid when the token ends with it. `null`: looked
 * up and not there (or expired); `undefined`: not looked up (the token names none).
 */
export interface StoredToken extends StoredPayload {
  grant: StoredPayload | null | undefined;
  session: StoredPayload | null | undefined;
}

/**
 * The grant's row key is the base64url SHA-256 of its id (src/shared/crypto.ts, `sha256`), computed
 * here from the token's grant_id: PostgreSQL's `encode(…, 'base64')` with the URL alphabet and no
 * padding (a 32-byte digest is 44 characters, under the 76 where encode would break the line).
 * The session: the one the engine's `Session.findByUid` would return (any one row of that uid, as
 * findLive's `rows[0]`), looked up only when the payload says the token expires with it
 * (oidc-provider's checkSessionBinding, lib/models/token_helpers.js).
 */
const findTokensText = (models: number) => `SELECT t.model, t.payload, t.consumed_at, t.grant_id,
         g.payload AS grant_payload, g.consumed_at AS grant_consumed_at, g.found AS grant_found,
         s.payload AS session_payload, s.consumed_at AS session_consumed_at, s.found AS session_found
       FROM oidc_payloads t
       LEFT JOIN LATERAL (
         SELECT payload, consumed_at, true AS found FROM oidc_payloads
         WHERE t.grant_id IS NOT NULL AND model = 'Grant'
           AND id_hash = translate(rtrim(encode(sha256(convert_to(t.grant_id, 'UTF8')), 'base64'), '='), '+/', '-_')
           AND (expires_at IS NULL OR expires_at > $3)) g ON true
       LEFT JOIN LATERAL (
         SELECT payload, consumed_at, true AS found FROM oidc_payloads
         WHERE t.payload->'expiresWithSession' = 'true'::jsonb AND model = 'Session' AND session_uid = t.payload->>'sessionUid'
           AND (expires_at IS NULL OR expires_at > $3)
         LIMIT 1) s ON true
       WHERE t.id_hash = $2 AND t.model IN ($1${Array.from({ length: models - 1 }, (_, i) => `, $${i + 4}`).join('')})
         AND (t.expires_at IS NULL OR t.expires_at > $3)`;

/**
 * One text per number of models (1 to 4), built once: the models are parameters of their own, not
 * an array. With an array the planner costs the lookup for ten models whatever it holds, so its
 * generic plan looked dearer than a custom one and the statement was planned anew on every
 * execution once the table had statistics (0.3–0.55 ms of planning for 0.05–0.1 of execution,
 * the trap decision 0064 describes for `unnest`; found by an independent review).
 */
export const MAX_MODELS_PER_LOOKUP = 4;
const FIND_TOKENS = Array.from({ length: MAX_MODELS_PER_LOOKUP }, (_, i) => findTokensText(i + 1));

interface TokenRow extends StoredPayload {
  model: string;
  grant_id: string | null;
  grant_payload: Record<string, unknown> | null;
  grant_consumed_at: Date | null;
  grant_found: boolean | null;
  session_payload: Record<string, unknown> | null;
  session_consumed_at: Date | null;
  session_found: boolean | null;
}

function tokenOf(row: TokenRow): StoredToken {
  const payload = row.payload;
  return {
    payload,
    consumed_at: row.consumed_at,
    // Looked up by the column, kept under the payload's id (what the engine asks for): the
    // adapter writes both from the same value; should they ever differ, nothing is kept.
    grant: row.grant_id === null || row.grant_id !== payload.grantId ? undefined
      : row.grant_found ? { payload: row.grant_payload!, consumed_at: row.grant_consumed_at } : null,
    session: payload.expiresWithSession !== true || typeof payload.sessionUid !== 'string' ? undefined
      : row.session_found ? { payload: row.session_payload!, consumed_at: row.session_consumed_at } : null,
  };
}

/** Queries of the oidc-provider model store. Every lookup is by primary key or a partial index. */
export function createOidcPayloadQueries(db: Queryable) {
  /** The row of `model` whose `column` equals `value`, unless it has expired by `now`. */
  async function findLive(column: LookupColumn, model: string, value: string, now: Date): Promise<StoredPayload | undefined> {
    const { rows } = await db.query<StoredPayload>(
      FIND_LIVE[column],
      // The time as ISO 8601 text (what timestamptz reads): node-postgres' own Date formatting
      // is a measurable cost on lookups made several times per request (issue 14).
      [model, value, now.toISOString()],
    );
    return rows[0];
  }

  return {
    /** One statement per save: the single write an issued token costs. */
    async upsert(write: PayloadWrite): Promise<void> {
      await db.query(
        `INSERT INTO oidc_payloads (model, id_hash, payload, grant_id, session_uid, user_code_hash, expires_at, account_id)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
         ON CONFLICT (model, id_hash) DO UPDATE SET
           payload = excluded.payload, grant_id = excluded.grant_id, session_uid = excluded.session_uid,
           user_code_hash = excluded.user_code_hash, expires_at = excluded.expires_at, account_id = excluded.account_id`,
        [write.model, write.idHash, JSON.stringify(write.payload), write.grantId, write.sessionUid, write.userCodeHash, write.expiresAt, write.accountId],
      );
    },

    /**
     * Several writes, each to a different row, as one statement (one commit): deletions,
     * consumptions and upserts as data-modifying CTEs (PostgreSQL docs, 7.8.4). False when a
     * consumption found its row already used: then none of the engine's writes was stored (the
     * joined writes are; the caller sends no consumption with them). The caller
     * guarantees that no row is named twice: the parts of one statement see the same snapshot,
     * so their order would not hold for one row. Joined writes (other tables: the audit row, a
     * throttle cleared, a session's device) become parts of the same statement.
     *
     * A request's batch is a few rows of each kind (a refresh: one consumed, two stored): they go
     * in as rows of scalar parameters (`VALUES`), whose row count the planner knows. With arrays
     * (`unnest`) the planner assumes ten rows whatever they hold, so on the embedded engine, where
     * repeated statements are prepared by name (decision 0062), it planned the statement anew on
     * every execution rather than keep a generic plan costed for ten: 0.55–0.77 ms a refresh's
     * batch against 0.24–0.29 with `VALUES` (decision 0064). Past `VALUES_ROWS` rows of a kind,
     * arrays: each row count is another statement text, and the embedded engine names only so
     * many (decision 0062), so rare large batches must not multiply the texts.
     */
    async writeBatch(ops: PayloadOp[]): Promise<boolean> {
      const params: unknown[] = [];
      const arg = (value: unknown, type: string) => `$${params.push(value)}::${type}`;
      /** The rows as `VALUES (…), (…)` of typed parameters, or one `unnest` of typed arrays past `VALUES_ROWS`. */
      const rowsOf = <T>(items: T[], columns: [type: string, get: (item: T) => unknown][], alias: string) => {
        if (items.length <= VALUES_ROWS) return `(VALUES ${items.map((item) => `(${columns.map(([type, get]) => arg(get(item), type)).join(', ')})`).join(', ')}) AS ${alias}`;
        return `unnest(${columns.map(([type, get]) => arg(items.map(get), `${type}[]`)).join(', ')}) AS ${alias}`;
      };
      const parts: string[] = [];
      const consumes = ops.flatMap((o) => (o.kind === 'consume' ? [o] : []));
      // A code or refresh token is used once (RFC 6749 §4.1.2, §10.4): the consumption takes only
      // a row not consumed yet, and the other writes of the engine's request — the tokens it
      // issued in exchange — are stored only if every consumption took its row. Two requests
      // racing with one token both found it unused; the second's UPDATE waits for the first's
      // commit, then finds the row consumed and takes nothing, so its tokens are never stored.
      const allUsed = consumes.length ? ` AND (SELECT count(*) FROM used) = ${consumes.length}` : '';
      if (consumes.length) {
        parts.push(`used AS (UPDATE oidc_payloads o SET consumed_at = to_timestamp(t.ms / 1000.0)
          FROM ${rowsOf(consumes, [['text', (o) => o.model], ['text', (o) => o.idHash], ['float8', (o) => o.now.getTime()]], 't(m, h, ms)')}
          WHERE o.model = t.m AND o.id_hash = t.h AND o.consumed_at IS NULL RETURNING 1)`);
      }
      const destroys = ops.flatMap((o) => (o.kind === 'destroy' ? [o] : []));
      if (destroys.length) {
        parts.push(`gone AS (DELETE FROM oidc_payloads WHERE (model, id_hash) IN (SELECT m, h FROM ${rowsOf(destroys, [['text', (o) => o.model], ['text', (o) => o.idHash]], 't(m, h)')})${allUsed})`);
      }
      const upserts = ops.flatMap((o) => (o.kind === 'upsert' ? [o.write] : []));
      if (upserts.length) {
        parts.push(`saved AS (INSERT INTO oidc_payloads (model, id_hash, payload, grant_id, session_uid, user_code_hash, expires_at, account_id)
          SELECT m, h, p::jsonb, g, s, u, to_timestamp(e / 1000.0), a
          FROM ${rowsOf(upserts, [
            ['text', (w) => w.model], ['text', (w) => w.idHash], ['text', (w) => JSON.stringify(w.payload)], ['text', (w) => w.grantId],
            ['text', (w) => w.sessionUid], ['text', (w) => w.userCodeHash], ['float8', (w) => w.expiresAt?.getTime() ?? null], ['text', (w) => w.accountId],
          ], 't(m, h, p, g, s, u, e, a)')}${allUsed ? `
          WHERE true${allUsed}` : ''}
          ON CONFLICT (model, id_hash) DO UPDATE SET
            payload = excluded.payload, grant_id = excluded.grant_id, session_uid = excluded.session_uid,
            user_code_hash = excluded.user_code_hash, expires_at = excluded.expires_at, account_id = excluded.account_id)`);
      }
      const joined = ops.flatMap((o) => (o.kind === 'joined' ? [o.write] : []));
      joined.forEach((write, i) => {
        const offset = params.length;
        params.push(...write.params);
        parts.push(`joined_${i} AS (${renumbered(write, offset)})`);
      });
      if (!parts.length) return true;
      if (!consumes.length) {
        await db.query(`WITH ${parts.join(', ')} SELECT 1`, params);
        return true;
      }
      const { rows } = await db.query<{ used: number }>(`WITH ${parts.join(', ')} SELECT (SELECT count(*) FROM used)::int AS used`, params);
      return rows[0]!.used === consumes.length;
    },

    find: (model: string, idHash: string, now: Date) => findLive('id_hash', model, idHash, now),

    /**
     * The token of `idHash` under each of `models` that has one, each with its grant and (when
     * bound to it) its session, in one statement (`StoredToken`), by model.
     */
    async findTokens(models: readonly string[], idHash: string, now: Date): Promise<Map<string, StoredToken>> {
      const text = FIND_TOKENS[models.length - 1];
      if (!text) throw new RangeError(`findTokens: 1 to ${MAX_MODELS_PER_LOOKUP} models, not ${models.length}`);
      const { rows } = await db.query<TokenRow>(text, [models[0], idHash, now.toISOString(), ...models.slice(1)]);
      return new Map(rows.map((row) => [row.model, tokenOf(row)]));
    },

    findBySessionUid: (model: string, uid: string, now: Date) => findLive('session_uid', model, uid, now),

    findByUserCodeHash: (model: string, userCodeHash: string, now: Date) => findLive('user_code_hash', model, userCodeHash, now),

    /** Marks a code or token used; false when it already was (or is gone): a second use. */
    async consume(model: string, idHash: string, now: Date): Promise<boolean> {
      const { rowCount } = await db.query('UPDATE oidc_payloads SET consumed_at = $3 WHERE model = $1 AND id_hash = $2 AND consumed_at IS NULL', [model, idHash, now]);
      return rowCount === 1;
    },

    /**
     * A code or refresh token used twice at once: revokes what was issued under its grant — every
     * token of the grant and the grant itself — as the engine does when it sees a used one again
     * (RFC 6749 §4.1.2, RFC 9700 §4.14.2). The grant's row key is the hash of its id (`findTokensText`).
     */
    async revokeGrantOf(model: string, idHash: string): Promise<void> {
      await db.query(
        `WITH g AS (SELECT grant_id FROM oidc_payloads WHERE model = $1 AND id_hash = $2 AND grant_id IS NOT NULL)
         DELETE FROM oidc_payloads o USING g
         WHERE o.grant_id = g.grant_id
            OR (o.model = 'Grant' AND o.id_hash = translate(rtrim(encode(sha256(convert_to(g.grant_id, 'UTF8')), 'base64'), '='), '+/', '-_'))`,
        [model, idHash],
      );
    },

    async destroy(model: string, idHash: string): Promise<void> {
      await db.query('DELETE FROM oidc_payloads WHERE model = $1 AND id_hash = $2', [model, idHash]);
    },

    async revokeByGrantId(model: string, grantId: string): Promise<void> {
      await db.query('DELETE FROM oidc_payloads WHERE grant_id = $2 AND model = $1', [model, grantId]);
    },

    /**
     * Deletes up to `limit` expired rows, found by the expiry index and deleted by their physical
     * address (ctid: no second lookup by primary key). Rows another instance's sweep has locked
     * are skipped, not waited for, so several instances sweep disjoint rows at once.
     */
    async sweepExpired(now: Date, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM oidc_payloads WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM oidc_payloads WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`,
        [now, limit],
      );
      return rowCount;
    },

    /** Live sessions of an account, with the uid that identifies each. */
    async sessionsOf(tx: Queryable, accountId: string, now: Date): Promise<Array<{ session_uid: string; payload: Record<string, unknown> }>> {
      const { rows } = await tx.query<{ session_uid: string; payload: Record<string, unknown> }>(
        `SELECT session_uid, payload FROM oidc_payloads
         WHERE account_id = $1 AND model = 'Session' AND (expires_at IS NULL OR expires_at > $2)`,
        [accountId, now],
      );
      return rows;
    },

    /**
     * Ends an account's sessions and revokes its grants and their tokens in one transaction,
     * except the session `keepSessionUid` and the grants it uses.
     */
    async revokeAccount(tx: Queryable, accountId: string, keepSessionUid: string | null, keepGrantIdHashes: string[], keepGrantIds: string[]): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads
         WHERE account_id = $1
           AND NOT (model = 'Session' AND session_uid IS NOT DISTINCT FROM $2)
           AND NOT (model = 'Grant' AND id_hash = ANY($3::text[]))
           AND NOT (grant_id IS NOT NULL AND grant_id = ANY($4::text[]))
           AND model <> 'Interaction'`,
        [accountId, keepSessionUid, keepGrantIdHashes, keepGrantIds],
      );
      return rowCount;
    },

    /** Ends one session and revokes the grants (and their tokens) it used. */
    async revokeSession(tx: Queryable, accountId: string, sessionUid: string, grantIds: string[], grantIdHashes: string[]): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads
         WHERE account_id = $1 AND (
           (model = 'Session' AND session_uid = $2)
           OR (model = 'Grant' AND id_hash = ANY($4::text[]))
           OR (grant_id IS NOT NULL AND grant_id = ANY($3::text[])))`,
        [accountId, sessionUid, grantIds, grantIdHashes],
      );
      return rowCount;
    },
  };
}

export type OidcPayloadQueries = ReturnType<typeof createOidcPayloadQueries>;
