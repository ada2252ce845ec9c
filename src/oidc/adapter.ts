import { AsyncLocalStorage } from 'node:async_hooks';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { sha256 } from '../shared/crypto.ts';
import { containsNul } from '../shared/nul.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { Database, Defer, Queryable } from '../persistence/db.ts';
import { createOidcPayloadQueries, type OidcPayloadQueries, type PayloadOp, type StoredPayload, type StoredToken } from '../persistence/queries/oidc-payloads.ts';

/**
 * The engine's writes in one of its requests, made together as the request ends (issue 14: one
 * commit instead of one per write). The engine awaits each save in turn — at the end of a login
 * it deletes the interaction and saves the grant, the session and the code; a refresh consumes
 * the old refresh token and saves the new one and an access token — and nothing it answers
 * depends on a save having reached the database before the response is sent. So:
 *
 * - inside `around` (wrapped around the engine's routes by src/app.ts), upserts, consumptions
 *   and deletions are queued, after the same checks as before (a NUL is still refused at once);
 * - any read (`find`, `findByUid`, `findByUserCode`) or `revokeByGrantId` first writes what is
 *   queued, so the request reads its own writes exactly as before — except a `find` by key of a
 *   row the request itself saved or deleted, which the queue answers, and of a session, grant or
 *   interaction nothing queued writes, read as it is (`queued`): the engine's resume in the form
 *   post that finished the interaction reads all three (decision 0079);
 * - when the engine's middleware has finished and before the response leaves, the queue is
 *   written: writes to different rows as one statement (`writeBatch`), or — should one row be
 *   written twice — one by one as before. A failure there fails the request (the error boundary
 *   answers it), so no client is ever told of a token that was not stored;
 * - a write made after that (a promise still running when the request ended) goes straight to
 *   the database;
 * - the application's own writes may join the queue (`defer`): the audit row, the throttle
 *   cleared after a correct password, a session's device (issue 14, decision 0050). They are
 *   made in the same statement as the engine's, so a login's end is one commit, and stored
 *   with the engine's writes or not at all. `around` also wraps our interaction pages
 *   (src/app.ts), where the engine's interaction save is the write they join.
 *
 * What changes: a refresh token is marked consumed with its successors' rows instead of before
 * they are built: an atomic rotation. Two requests presenting one code or refresh token at once
 * both find it unused (the engine reads, then consumes); the batch's consumption takes only an
 * unused row and its other writes depend on it, so the second request stores nothing, answers
 * invalid_grant and revokes the grant, as the engine does for a token used again later
 * (`TokenReusedError`; RFC 6749 §4.1.2, RFC 9700 §4.14.2).
 */
export interface WriteBehind {
  around<T>(work: () => Promise<T>): Promise<T>;
  /**
   * The scope of a request to an endpoint that only reads (userinfo, introspection): no batch —
   * a write there goes straight to the database — but rows read ahead are kept for it (`ReadAhead`).
   */
  reading<T>(work: () => Promise<T>): Promise<T>;
  /** The rows read ahead in the request running now (inside `around` or `reading`). */
  readAhead(): ReadAhead | undefined;
  /** The queue of the request running now, if it is still open. */
  pending(): PayloadOp[] | undefined;
  /**
   * What the request's queue holds for one row, for a read of it by key: the payload a save of it
   * will store, `null` when it will delete it (or the save has expired), `'untouched'` when nothing
   * queued writes it — no write to that row, no application write to the engine's table — so the
   * database's row is the answer and nothing needs writing first, and `undefined` when the queue
   * must be written before reading (a consumption, an application write to the table, a batch
   * being written). Lets the engine's resume, run inside the form post that finished the
   * interaction (decision 0079), read the interaction it saved and the session and grant it did
   * not touch without splitting the request's one statement in two.
   */
  queued(model: string, idHash: string, now: Date): Record<string, unknown> | null | 'untouched' | undefined;
  /** Writes what the current request queued so far (before a read), after any such write still running. */
  flush(): Promise<void>;
  /**
   * Before a read: a promise when the request has writes queued or still being written (it reads
   * its own writes), else `undefined` — not a promise, so a lookup costs no extra turn of the
   * microtask queue in the usual case (issue 14).
   */
  settled(): Promise<void> | undefined;
  /**
   * The application's own writes join the batch (`Defer`, src/persistence/db.ts): queued when
   * the current request's batch is open, made in the same statement as the engine's writes.
   */
  defer: Defer;
}

/**
 * Rows the adapter read ahead in one request, for the engine's next reads (issue 14: a round trip
 * each). The engine reads a token, then the session it is bound to (`Session.findByUid`, when it
 * expires with it), then its grant (`Grant.find`): on userinfo, introspection, a refresh and a
 * code's exchange. The adapter reads all three in one statement (`findTokens`) and keeps the other
 * two here; the engine's next read of each takes it instead of asking the database.
 *
 * Why this reads nothing stale: the rows come from the same snapshot as the token, a moment
 * earlier than the engine's own reads would have been (any of those could already see a row that
 * changed a moment later); each is taken once, so a second read of it asks the database; and
 * any write the adapter makes or queues in the request drops them all, and again once it is stored
 * (a request reads its own writes). A lookup that was in flight across such a write keeps nothing
 * (`generation`); the rows end with the request's scope (`end`). The application's own statements
 * on `oidc_payloads` (signing out everywhere, src/persistence/queries/account-activity.ts) write
 * nothing between the engine's token read and its grant read (decision 0071).
 */
export class ReadAhead {
  private readonly rows = new Map<string, StoredPayload | null>();
  /** Counts the writes that dropped what was read ahead. */
  generation = 0;
  /** The request's scope has ended: a promise still running after it keeps nothing. */
  ended = false;

  /** A row kept for `key`: the row, `null` for one known to be absent, `undefined` when none is kept. */
  take(key: string): StoredPayload | null | undefined {
    const row = this.rows.get(key);
    if (row !== undefined) this.rows.delete(key);
    return row;
  }

  /** Keeps `row` for `key`, unless a write came since the lookup began (`generation` then). */
  keep(key: string, row: StoredPayload | null, generation: number): void {
    if (generation === this.generation && !this.ended) this.rows.set(key, row);
  }

  drop(): void {
    this.generation += 1;
    this.rows.clear();
  }

  end(): void {
    this.drop();
    this.ended = true;
  }
}

/** The key of a row read ahead: by model and id, or (`uid`) a session by its uid. */
export const aheadKey = (model: string, id: string, by: 'id' | 'uid' = 'id') => `${model}\0${by}\0${id}`;

/** The table a writing statement writes first (INSERT INTO, UPDATE, DELETE FROM). */
const tableOf = (sql: string) => /^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([a-z_][a-z0-9_]*)/i.exec(sql)?.[1]?.toLowerCase() ?? sql;

/**
 * A code or refresh token that another request consumed first: the same one presented twice at
 * once. Nothing of the losing request was stored and the grant is revoked (`createWriteBehind`).
 * It is the engine's own `invalid_grant`: thrown while the engine still runs (a read in the
 * request writes the queue first), the engine answers it as it answers a replay; thrown as the
 * request ends, src/app.ts answers the same.
 */
export class TokenReusedError extends errors.InvalidGrant {
  readonly model: string;

  constructor(model: string) {
    super({ detail: `${model} used twice at once` });
    this.name = 'TokenReusedError';
    this.model = model;
  }
}

export function createWriteBehind(queries: OidcPayloadQueries, db?: Pick<Database, 'query' | 'transaction'>): WriteBehind {
  /** A request's scope: its queued writes, whether it still queues, a batch being written before a read, what was read ahead. */
  interface Scope { ops: PayloadOp[]; open: boolean; flushing?: Promise<void>; ahead: ReadAhead }
  const storage = new AsyncLocalStorage<Scope>();
  const keyOf = (op: PayloadOp) => (op.kind === 'upsert' ? `${op.write.model}\0${op.write.idHash}` : op.kind === 'joined' ? undefined : `${op.model}\0${op.idHash}`);

  async function one(q: OidcPayloadQueries | Queryable, op: PayloadOp): Promise<void> {
    if (op.kind === 'joined') await (q as Queryable).query(op.write.sql, op.write.params);
    else if (op.kind === 'upsert') await (q as OidcPayloadQueries).upsert(op.write);
    else if (op.kind === 'consume') {
      if (!(await (q as OidcPayloadQueries).consume(op.model, op.idHash, op.now))) throw new TokenReusedError(op.model);
    } else await (q as OidcPayloadQueries).destroy(op.model, op.idHash);
  }

  /**
   * Writes `ops`. When one of its consumptions finds the code or refresh token already used — the
   * same one presented twice at once — nothing of the request's is stored, the grant it was issued
   * under is revoked, and `TokenReusedError` is thrown (src/app.ts answers invalid_grant).
   */
  async function write(ops: PayloadOp[]): Promise<void> {
    try {
      await writeOps(ops);
    } catch (err) {
      if (!(err instanceof TokenReusedError)) throw err;
      for (const op of ops) if (op.kind === 'consume') await queries.revokeGrantOf(op.model, op.idHash);
      throw err;
    }
  }

  async function writeOps(ops: PayloadOp[]): Promise<void> {
    if (!ops.length) return;
    // A single write (client_credentials, /auth) keeps its plain statement: cheaper to plan.
    if (ops.length === 1) {
      const [op] = ops as [PayloadOp];
      if (op.kind !== 'joined') return one(queries, op);
      if (!db) throw new Error('a joined write needs the database');
      return void (await db.query(op.write.sql, op.write.params));
    }
    // Saving one row again replaces it (the session is saved more than once): keep the last.
    const last = new Map<string, PayloadOp>();
    const joined: PayloadOp[] = [];
    const joinedTables = new Set<string>();
    let mixed = false;
    for (const op of ops) {
      const key = keyOf(op);
      if (key === undefined) {
        // Two writes to one table (two audit rows): the parts of one statement run in no set
        // order (PostgreSQL docs, 7.8.4), and the trail's order is the order they were made in.
        const table = op.kind === 'joined' ? tableOf(op.write.sql) : '';
        if (joinedTables.has(table)) mixed = true;
        joinedTables.add(table);
        joined.push(op);
        continue;
      }
      const previous = last.get(key);
      // Saved, then deleted (an interaction finished and resumed in one request): the deletion
      // alone leaves the row as both would. Any other repeat keeps its order (a consumption, or a
      // save after a deletion, which must not keep the old row's consumed_at).
      if (previous && !(previous.kind === 'upsert' && (op.kind === 'upsert' || op.kind === 'destroy'))) mixed = true;
      last.set(key, op);
    }
    const consumes = ops.filter((op) => op.kind === 'consume');
    if (!mixed && last.size === 1 && !joined.length) return one(queries, [...last.values()][0]!);
    // (A consumption beside the application's writes — no endpoint makes both — goes the
    // transaction's way below, so that a second use stores neither.)
    if (!mixed && !(consumes.length && joined.length)) {
      if (!(await queries.writeBatch([...last.values(), ...joined]))) throw new TokenReusedError((consumes[0] as { model: string }).model);
      return;
    }
    // One row written twice in different ways, or one table twice by the application: in order,
    // one by one — in one transaction when the application's writes ride along or a code is
    // consumed, so that they are stored with the engine's or not at all.
    if (!joined.length && !consumes.length) {
      for (const op of ops) await one(queries, op);
      return;
    }
    if (!db) throw new Error('a joined write needs the database');
    await db.transaction(async (tx) => {
      const inTx = createOidcPayloadQueries(tx);
      for (const op of ops) await one(op.kind === 'joined' ? tx : inTx, op);
    });
  }

  async function flush(): Promise<void> {
    const store = storage.getStore();
    if (!store) return;
    if (!store.ops.length) {
      await store.flushing;
      return;
    }
    // One batch after another: a read that comes while one is written waits for it too, and what
    // was read ahead meanwhile (from before the write) is dropped once it is stored.
    const ops = store.ops.splice(0);
    const previous = store.flushing;
    const current = (async () => {
      await previous?.catch(() => undefined);
      try {
        await write(ops);
      } finally {
        store.ahead.drop();
      }
    })();
    store.flushing = current;
    try {
      await current;
    } finally {
      if (store.flushing === current) store.flushing = undefined;
    }
  }

  return {
    around(work) {
      // Already inside a request's batch (our routes handing a request on to the engine's): one batch.
      const outer = storage.getStore();
      if (outer?.open) return work();
      // Inside a reading scope: what it read ahead is dropped by this batch's writes too.
      const store: Scope = { ops: [], open: true, ahead: outer?.ahead ?? new ReadAhead() };
      return storage.run(store, async () => {
        try {
          const result = await work();
          store.open = false;
          store.ahead.end();
          await write(store.ops.splice(0));
          return result;
        } catch (err) {
          store.ahead.end();
          // The engine answers its own errors; one that escapes it still leaves what was
          // written before it, as without the queue. Should the application's writes (an audit
          // row) be among what could not be stored, that failure is the answer instead: a
          // request never looks as if it had recorded what it did not.
          store.open = false;
          const ops = store.ops.splice(0);
          await write(ops).catch((writeErr: unknown) => {
            if (ops.some((op) => op.kind === 'joined')) throw writeErr;
          });
          throw err;
        }
      });
    },
    reading(work) {
      if (storage.getStore()) return work();
      const store: Scope = { ops: [], open: false, ahead: new ReadAhead() };
      return storage.run(store, async () => {
        try {
          return await work();
        } finally {
          store.ahead.end();
        }
      });
    },
    readAhead() {
      const ahead = storage.getStore()?.ahead;
      return ahead?.ended ? undefined : ahead;
    },
    settled() {
      const store = storage.getStore();
      return store && ((store.open && store.ops.length) || store.flushing) ? flush() : undefined;
    },
    pending() {
      const store = storage.getStore();
      return store?.open ? store.ops : undefined;
    },
    queued(model, idHash, at) {
      const store = storage.getStore();
      if (!store?.open || store.flushing) return undefined;
      let found: Exclude<PayloadOp, { kind: 'joined' }> | undefined;
      for (const op of store.ops) {
        if (op.kind === 'joined') {
          if (tableOf(op.write.sql) === 'oidc_payloads') return undefined;
        } else if (op.kind === 'upsert' ? op.write.model === model && op.write.idHash === idHash : op.model === model && op.idHash === idHash) found = op;
      }
      if (!found) return 'untouched';
      if (found.kind === 'consume') return undefined;
      if (found.kind === 'destroy') return null;
      const { payload, expiresAt } = found.write;
      if (expiresAt && expiresAt.getTime() <= at.getTime()) return null;
      // What reading the stored jsonb back would give: a copy of its own, through JSON.
      return JSON.parse(JSON.stringify(payload)) as Record<string, unknown>;
    },
    flush,
    defer(write) {
      const store = storage.getStore();
      if (!store?.open) return false;
      store.ops.push({ kind: 'joined', write });
      return true;
    },
  };
}

/**
 * The models whose lookup reads their grant and session ahead (`ReadAhead`): the tokens the engine
 * checks against both, and client credentials, which have neither but are looked up beside an
 * access token by introspection (one statement for both).
 */
const READS_AHEAD = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode', 'ClientCredentials']);

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
export function createPostgresAdapter(queries: OidcPayloadQueries, clock: Clock, writeBehind?: WriteBehind) {
  /** Queued for the end of the request when inside `writeBehind.around`, else written now. */
  const write = async (op: Exclude<PayloadOp, { kind: 'joined' }>): Promise<void> => {
    // What was read ahead is dropped as the write is queued or sent, and again once it is stored:
    // a lookup on another connection meanwhile may have read the row from before it.
    const ahead = writeBehind?.readAhead();
    ahead?.drop();
    const queue = writeBehind?.pending();
    if (queue) {
      queue.push(op);
      return;
    }
    try {
      if (op.kind === 'upsert') await queries.upsert(op.write);
      else if (op.kind === 'consume') {
        // Outside a request's batch the engine awaits the consumption before it issues anything:
        // a second use is its invalid_grant (RFC 6749 §5.2), and the grant is revoked.
        if (!(await queries.consume(op.model, op.idHash, op.now))) {
          await queries.revokeGrantOf(op.model, op.idHash);
          throw new TokenReusedError(op.model);
        }
      } else await queries.destroy(op.model, op.idHash);
    } finally {
      ahead?.drop();
    }
  };
  /** Before a read: what this request queued is written first (`WriteBehind.settled`). */
  const settled = (): Promise<void> | undefined => writeBehind?.settled();
  const now = () => new Date(clock.now());
  /**
   * Lookups of one id (by its hash) asked for in the current turn of a request, under several
   * token models: introspection and revocation look a value up as an access token and as client
   * credentials (and, without a hint, a refresh token) side by side (oidc-provider's findToken,
   * lib/helpers/token_find.js). They go as one statement once the turn is over (a microtask), each
   * caller taking its model's row. Per request (its ReadAhead) and per adapter.
   */
  const turns = new WeakMap<ReadAhead, Map<string, { models: string[]; rows: Promise<Map<string, StoredToken>> }>>();
  /** The token of `model` under `idHash`, looked up with the other models asked for it in this turn. */
  const findInTurn = (ahead: ReadAhead, model: string, idHash: string): Promise<StoredToken | undefined> => {
    let open = turns.get(ahead);
    if (!open) turns.set(ahead, (open = new Map()));
    const inTurn = open;
    let turn = inTurn.get(idHash);
    // The same model twice in a turn: a lookup of its own, so that each caller gets a payload of
    // its own to keep (restore completes it in place).
    if (turn?.models.includes(model)) return queries.findTokens([model], idHash, now()).then((rows) => rows.get(model));
    if (!turn) {
      const models: string[] = [];
      const at = now();
      // Sent once the current turn's lookups have been asked for; a later one starts a new turn.
      // (So a lookup's statement leaves at the end of the turn it was asked in, not at once.)
      const rows = Promise.resolve().then(() => {
        inTurn.delete(idHash);
        return queries.findTokens(models, idHash, at);
      });
      turn = { models, rows };
      inTurn.set(idHash, turn);
    }
    turn.models.push(model);
    return turn.rows.then((rows) => rows.get(model));
  };
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
      await write({ kind: 'upsert', write: {
        model: this.model,
        idHash: sha256(id),
        payload: stored as Record<string, unknown>,
        grantId: typeof payload.grantId === 'string' ? payload.grantId : null,
        sessionUid: this.model === 'Session' && typeof payload.uid === 'string' ? payload.uid : null,
        userCodeHash: typeof payload.userCode === 'string' ? sha256(payload.userCode) : null,
        accountId: typeof payload.accountId === 'string' ? payload.accountId : null,
        expiresAt: expiresIn ? new Date(clock.now() + expiresIn * 1000) : null,
      } });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (hasNul(id)) return undefined;
      // The request's own save of this row, not written yet: the interaction a finished step saved
      // and the engine's resume reads in the same request (src/oidc/interactions.ts). Answered from
      // the queue, so that the save is written with the resume's writes: one commit, not two.
      // A row nothing queued writes is read as it is, without writing the queue first — but not a
      // token whose lookup reads its grant and session too, which the queue may write.
      let untouched = false;
      if (writeBehind?.pending()?.length) {
        const queued = writeBehind.queued(this.model, sha256(id), now());
        if (queued === 'untouched') untouched = !READS_AHEAD.has(this.model);
        else if (queued !== undefined) return queued === null ? undefined : restore(id, { payload: queued, consumed_at: null });
      }
      const flushing = untouched ? undefined : settled();
      if (flushing) await flushing;
      const ahead = writeBehind?.readAhead();
      if (!ahead) return restore(id, await queries.find(this.model, sha256(id), now()));
      const held = ahead.take(aheadKey(this.model, id));
      if (held !== undefined) return restore(id, held ?? undefined);
      if (!READS_AHEAD.has(this.model)) return restore(id, await queries.find(this.model, sha256(id), now()));
      const generation = ahead.generation;
      const found = await findInTurn(ahead, this.model, sha256(id));
      if (found?.grant !== undefined) ahead.keep(aheadKey('Grant', found.payload.grantId as string), found.grant, generation);
      if (found?.session !== undefined) ahead.keep(aheadKey('Session', found.payload.sessionUid as string, 'uid'), found.session, generation);
      return restore(id, found);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      if (hasNul(uid)) return undefined;
      const flushing = settled();
      if (flushing) await flushing;
      const held = writeBehind?.readAhead()?.take(aheadKey(this.model, uid, 'uid'));
      if (held !== undefined) return restore(undefined, held ?? undefined);
      return restore(undefined, await queries.findBySessionUid(this.model, uid, now()));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      if (hasNul(userCode)) return undefined;
      // Only the device flow looks codes up this way, and it is not enabled (it would need the
      // DeviceCode's id kept in clear: see docs/decisions/0004-hashed-protocol-artifacts.md).
      await settled();
      return restore(undefined, await queries.findByUserCodeHash(this.model, sha256(userCode), now()));
    }

    async consume(id: string): Promise<void> {
      await write({ kind: 'consume', model: this.model, idHash: sha256(id), now: now() });
    }

    async destroy(id: string): Promise<void> {
      await write({ kind: 'destroy', model: this.model, idHash: sha256(id) });
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      if (hasNul(grantId)) return;
      const ahead = writeBehind?.readAhead();
      ahead?.drop();
      await settled();
      try {
        await queries.revokeByGrantId(this.model, grantId);
      } finally {
        ahead?.drop();
      }
    }
  };
}

/**
 * Deletes expired engine rows in batches of `batch` (default 5,000), until a batch comes back
 * short or `maxRows` (default 250,000) have gone in this call: each batch is its own short
 * statement, so locks stay short while requests run, and one call is bounded whatever the
 * backlog (the next sweep goes on). Lookups already ignore expired rows. Returns how many went.
 */
export async function sweepExpiredPayloads(deps: { queries: OidcPayloadQueries; clock: Clock; logger: Logger; batch?: number; maxRows?: number }): Promise<number> {
  const batch = deps.batch ?? 5000;
  const maxRows = deps.maxRows ?? 250_000;
  let removed = 0;
  while (removed < maxRows) {
    const n = await deps.queries.sweepExpired(new Date(deps.clock.now()), Math.min(batch, maxRows - removed));
    removed += n;
    if (n < batch) break;
  }
  if (removed) deps.logger.debug({ removed }, 'expired protocol rows swept');
  return removed;
}
