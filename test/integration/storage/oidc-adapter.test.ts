import { expect } from 'chai';
import { errors } from 'oidc-provider';
import { testDatabase, resetDatabase } from '../../helpers/db.ts';
import { createOidcPayloadQueries } from '../../../src/persistence/queries/oidc-payloads.ts';
import { aheadKey, createPostgresAdapter, createWriteBehind, sweepExpiredPayloads, TokenReusedError } from '../../../src/oidc/adapter.ts';
import { createAccountActivityQueries } from '../../../src/persistence/queries/account-activity.ts';
import { ACTIVITY_GRACE_MS, sweepEndedSessionActivity } from '../../../src/oidc/account-sessions.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import type { Clock } from '../../../src/shared/clock.ts';

/** The oidc-provider adapter against the real engine of this run (PGlite, or the server with DATABASE_URL). */
describe('PostgreSQL adapter for oidc-provider models', () => {
  let now = Date.UTC(2026, 0, 1);
  const clock: Clock = { now: () => now };
  let Adapter: ReturnType<typeof createPostgresAdapter>;

  beforeEach(async () => {
    await resetDatabase();
    now = Date.UTC(2026, 0, 1);
    Adapter = createPostgresAdapter(createOidcPayloadQueries(await testDatabase()), clock);
  });

  it('stores a payload and finds it again by id, with its jti restored', async () => {
    const tokens = new Adapter('AccessToken');
    await tokens.upsert('token-value-1', { jti: 'token-value-1', accountId: 'acc_1', grantId: 'g1', kind: 'AccessToken', scope: 'openid' }, 60);
    const found = await tokens.find('token-value-1');
    expect(found).to.deep.include({ jti: 'token-value-1', accountId: 'acc_1', grantId: 'g1', scope: 'openid' });
    expect(await tokens.find('token-value-2')).to.equal(undefined);
    expect(await new Adapter('RefreshToken').find('token-value-1'), 'models are separate').to.equal(undefined);
  });

  it('keeps NUL characters from PostgreSQL: lookups find nothing, a payload to store is invalid_request', async () => {
    const interactions = new Adapter('Interaction');
    expect(await interactions.find('a\u0000b')).to.equal(undefined);
    expect(await new Adapter('Session').findByUid('u\u0000')).to.equal(undefined);
    await interactions.revokeByGrantId('g\u0000');
    let refused: unknown;
    try {
      await interactions.upsert('uid-1', { jti: 'uid-1', params: { nonce: 'n\u0000' } } as never, 60);
    } catch (err) {
      refused = err;
    }
    expect(refused).to.include({ error: 'invalid_request', statusCode: 400 });
    expect(await interactions.find('uid-1')).to.equal(undefined);
  });

  it('never stores the token value: only its hash is on disk', async () => {
    const db = await testDatabase();
    await new Adapter('RefreshToken').upsert('secret-refresh-value', { jti: 'secret-refresh-value', grantId: 'g2' }, 60);
    await new Adapter('Interaction').upsert('interaction-uid', { jti: 'interaction-uid', session: { accountId: 'a', uid: 'u', cookie: 'session-cookie-value' } } as never, 60);
    const { rows } = await db.query<{ dump: string }>('SELECT string_agg(id_hash || payload::text, \' \') AS dump FROM oidc_payloads');
    expect(rows[0]!.dump).not.to.contain('secret-refresh-value');
    expect(rows[0]!.dump).not.to.contain('session-cookie-value');
    expect(rows[0]!.dump).not.to.contain('interaction-uid');
  });

  it('stops returning a payload once it expires, by the injected clock', async () => {
    const codes = new Adapter('AuthorizationCode');
    await codes.upsert('code-1', { jti: 'code-1', grantId: 'g' }, 60);
    now += 59_000;
    expect(await codes.find('code-1')).to.not.equal(undefined);
    now += 2_000;
    expect(await codes.find('code-1')).to.equal(undefined);
  });

  it('marks a payload consumed with the time of consumption', async () => {
    const codes = new Adapter('AuthorizationCode');
    await codes.upsert('code-2', { jti: 'code-2', grantId: 'g' }, 60);
    await codes.consume('code-2');
    const found = await codes.find('code-2');
    expect(found?.consumed).to.equal(Math.floor(now / 1000));
  });

  it('refuses a second consumption with invalid_grant and revokes the grant (a code used twice)', async () => {
    const codes = new Adapter('AuthorizationCode');
    const access = new Adapter('AccessToken');
    const grants = new Adapter('Grant');
    await grants.upsert('grant-c', { jti: 'grant-c', accountId: 'acc_c' }, 60);
    await codes.upsert('code-3', { jti: 'code-3', grantId: 'grant-c' }, 60);
    await access.upsert('at-c', { jti: 'at-c', grantId: 'grant-c' }, 60);
    await access.upsert('at-other', { jti: 'at-other', grantId: 'grant-d' }, 60);
    await codes.consume('code-3');
    const second = await codes.consume('code-3').catch((err: unknown) => err);
    expect(second).to.be.instanceOf(errors.InvalidGrant);
    expect(await access.find('at-c')).to.equal(undefined);
    expect(await grants.find('grant-c')).to.equal(undefined);
    expect(await codes.find('code-3')).to.equal(undefined);
    expect(await access.find('at-other'), 'another grant’s token stays').to.not.equal(undefined);
  });

  it('destroys a payload', async () => {
    const sessions = new Adapter('Session');
    await sessions.upsert('cookie-1', { jti: 'cookie-1', uid: 'uid-1', accountId: 'a' }, 60);
    await sessions.destroy('cookie-1');
    expect(await sessions.find('cookie-1')).to.equal(undefined);
  });

  it('finds a session by its uid', async () => {
    const sessions = new Adapter('Session');
    await sessions.upsert('cookie-2', { jti: 'cookie-2', uid: 'uid-2', accountId: 'acc_2' }, 60);
    const found = await sessions.findByUid('uid-2');
    expect(found).to.deep.include({ uid: 'uid-2', accountId: 'acc_2' });
    expect(await sessions.findByUid('uid-unknown')).to.equal(undefined);
  });

  it('revokes every token of a grant and nothing else', async () => {
    const access = new Adapter('AccessToken');
    const refresh = new Adapter('RefreshToken');
    await access.upsert('at-1', { jti: 'at-1', grantId: 'grant-a' }, 60);
    await refresh.upsert('rt-1', { jti: 'rt-1', grantId: 'grant-a' }, 60);
    await access.upsert('at-2', { jti: 'at-2', grantId: 'grant-b' }, 60);
    await access.revokeByGrantId('grant-a');
    await refresh.revokeByGrantId('grant-a');
    expect(await access.find('at-1')).to.equal(undefined);
    expect(await refresh.find('rt-1')).to.equal(undefined);
    expect(await access.find('at-2')).to.not.equal(undefined);
  });

  it('replaces a payload on a second upsert of the same id', async () => {
    const grants = new Adapter('Grant');
    await grants.upsert('grant-1', { jti: 'grant-1', accountId: 'a', openid: { scope: 'openid' } }, 60);
    await grants.upsert('grant-1', { jti: 'grant-1', accountId: 'a', openid: { scope: 'openid email' } }, 120);
    const found = await grants.find('grant-1');
    expect(found?.openid).to.deep.equal({ scope: 'openid email' });
  });

  it('sweeps expired rows in batches and leaves live ones', async () => {
    const queries = createOidcPayloadQueries(await testDatabase());
    const tokens = new Adapter('AccessToken');
    for (let i = 0; i < 5; i += 1) await tokens.upsert(`old-${i}`, { jti: `old-${i}` }, 10);
    await tokens.upsert('live', { jti: 'live' }, 3600);
    now += 60_000;
    expect(await queries.sweepExpired(new Date(now), 3)).to.equal(3);
    expect(await queries.sweepExpired(new Date(now), 3)).to.equal(2);
    expect(await queries.sweepExpired(new Date(now), 3)).to.equal(0);
    expect(await tokens.find('live')).to.not.equal(undefined);
  });

  it('sweeps a backlog in batches until one comes back short, at most maxRows per call', async () => {
    const queries = createOidcPayloadQueries(await testDatabase());
    const tokens = new Adapter('AccessToken');
    for (let i = 0; i < 11; i += 1) await tokens.upsert(`old-${i}`, { jti: `old-${i}` }, 10);
    await tokens.upsert('live', { jti: 'live' }, 3600);
    now += 60_000;
    const deps = { queries, clock, logger: createLogger('silent'), batch: 3, maxRows: 7 };
    expect(await sweepExpiredPayloads(deps), 'bounded per call').to.equal(7);
    expect(await sweepExpiredPayloads(deps), 'the rest, next round').to.equal(4);
    expect(await sweepExpiredPayloads(deps)).to.equal(0);
    expect(await tokens.find('live')).to.not.equal(undefined);
  });

  it('lets several instances sweep at once: each row deleted once, none left, no error', async () => {
    const db = await testDatabase();
    await db.query(
      `INSERT INTO oidc_payloads (model, id_hash, payload, expires_at)
       SELECT 'AccessToken', 'h' || i, '{}'::jsonb, $1 FROM generate_series(1, 400) i`,
      [new Date(now - 1000)],
    );
    const sweep = () => sweepExpiredPayloads({ queries: createOidcPayloadQueries(db), clock, logger: createLogger('silent'), batch: 25, maxRows: 1000 });
    const removed = await Promise.all([sweep(), sweep(), sweep()]);
    expect(removed.reduce((a, b) => a + b, 0)).to.equal(400);
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM oidc_payloads')).rows[0]!.n).to.equal(0);
  });

  it('deletes the activity records of sessions that ended or expired, and keeps the others', async () => {
    const db = await testDatabase();
    const activity = createAccountActivityQueries(db);
    const sessions = new Adapter('Session');
    const record = (uid: string) => activity.touch({ sessionUid: uid, accountId: 'acc_1', userAgent: 'UA', ip: '192.0.2.1', now: new Date(now) });
    await sessions.upsert('s-live', { jti: 's-live', uid: 'u-live', accountId: 'acc_1' } as never, 86_400);
    await sessions.upsert('s-expiring', { jti: 's-expiring', uid: 'u-expiring', accountId: 'acc_1' } as never, 3600);
    for (const uid of ['u-live', 'u-expiring', 'u-ended']) await record(uid);
    now += 2 * 3600_000; // u-expiring's session row has expired; u-ended never had one (ended, swept)
    await record('u-new'); // its session row is not written yet: kept for the grace period
    const left = async () => (await db.query<{ session_uid: string }>('SELECT session_uid FROM session_activity ORDER BY session_uid')).rows.map((r) => r.session_uid);
    const deps = { activity, clock, batch: 1, maxRows: 10 };
    expect(await sweepEndedSessionActivity(deps)).to.equal(2);
    expect(await left()).to.deep.equal(['u-live', 'u-new']);
    now += ACTIVITY_GRACE_MS + 1;
    expect(await sweepEndedSessionActivity(deps)).to.equal(1);
    expect(await left()).to.deep.equal(['u-live']);
    expect(await sweepEndedSessionActivity({ ...deps, maxRows: 1 })).to.equal(0);
  });

  describe('with the engine\'s writes of one request made as it ends (createWriteBehind)', () => {
    async function setup() {
      const queries = createOidcPayloadQueries(await testDatabase());
      const writes = createWriteBehind(queries);
      const Deferred = createPostgresAdapter(queries, clock, writes);
      const direct = (model: string, id: string) => new Adapter(model).find(id);
      return { writes, Deferred, direct };
    }

    it('writes nothing until the request ends, then all of it; the request reads its own writes', async () => {
      const { writes, Deferred, direct } = await setup();
      await new Adapter('RefreshToken').upsert('old-token', { jti: 'old-token', grantId: 'g1', kind: 'RefreshToken' }, 60);
      await new Adapter('Interaction').upsert('uid-1', { jti: 'uid-1', kind: 'Interaction' }, 60);
      await writes.around(async () => {
        await new Deferred('RefreshToken').consume('old-token');
        await new Deferred('RefreshToken').upsert('new-token', { jti: 'new-token', grantId: 'g1', kind: 'RefreshToken' }, 60);
        await new Deferred('AccessToken').upsert('access', { jti: 'access', grantId: 'g1', kind: 'AccessToken' }, 60);
        await new Deferred('Interaction').destroy('uid-1');
        // Not yet in the database…
        expect(await direct('RefreshToken', 'new-token')).to.equal(undefined);
        expect((await direct('RefreshToken', 'old-token'))?.consumed).to.equal(undefined);
        expect(await direct('Interaction', 'uid-1')).to.not.equal(undefined);
        // A read of a row the request itself saved or deleted is answered from the queue, which
        // stays queued (the interaction a step saved and the engine's resume reads: one commit)…
        expect(await new Deferred('AccessToken').find('access')).to.deep.include({ jti: 'access', grantId: 'g1', kind: 'AccessToken' });
        expect(await new Deferred('Interaction').find('uid-1')).to.equal(undefined);
        expect(await direct('RefreshToken', 'new-token')).to.equal(undefined);
        expect(await direct('Interaction', 'uid-1')).to.not.equal(undefined);
        // …a session, grant or interaction nothing queued writes is read as it is, nothing written…
        expect(await new Deferred('Grant').find('g1')).to.equal(undefined);
        expect(await direct('RefreshToken', 'new-token')).to.equal(undefined);
        // …and a token's read (which reads its grant and session too) writes what is queued first.
        expect(await new Deferred('AccessToken').find('another')).to.equal(undefined);
        expect(await direct('RefreshToken', 'new-token')).to.deep.include({ grantId: 'g1' });
        expect(await direct('Interaction', 'uid-1')).to.equal(undefined);
        expect((await direct('RefreshToken', 'old-token'))?.consumed).to.equal(Math.floor(now / 1000));
        await new Deferred('Session').upsert('session-cookie', { jti: 'session-cookie', uid: 'session-uid', accountId: 'acc_1', kind: 'Session' }, 60);
        expect(await direct('Session', 'session-cookie')).to.equal(undefined);
      });
      expect(await direct('Session', 'session-cookie')).to.deep.include({ uid: 'session-uid', accountId: 'acc_1' });
      expect(await new Adapter('Session').findByUid('session-uid')).to.deep.include({ accountId: 'acc_1' });
    });

    it('stores nothing of a request whose token another request consumed first, and revokes the grant', async () => {
      const { writes, Deferred, direct } = await setup();
      await new Adapter('Grant').upsert('grant-r', { jti: 'grant-r', accountId: 'acc_r' }, 60);
      await new Adapter('RefreshToken').upsert('shared-token', { jti: 'shared-token', grantId: 'grant-r', kind: 'RefreshToken' }, 60);
      // Two requests with the same refresh token, each having read it unused: the first ends first.
      const rotation = (suffix: string) => async () => {
        await new Deferred('RefreshToken').consume('shared-token');
        await new Deferred('RefreshToken').upsert(`next-${suffix}`, { jti: `next-${suffix}`, grantId: 'grant-r', kind: 'RefreshToken' }, 60);
        await new Deferred('AccessToken').upsert(`access-${suffix}`, { jti: `access-${suffix}`, grantId: 'grant-r', kind: 'AccessToken' }, 60);
      };
      await writes.around(rotation('a'));
      expect(await direct('RefreshToken', 'next-a')).to.not.equal(undefined);
      const second = await writes.around(rotation('b')).catch((err: unknown) => err);
      expect(second).to.be.instanceOf(TokenReusedError);
      expect(second, 'the engine’s own invalid_grant').to.be.instanceOf(errors.InvalidGrant);
      expect(await direct('RefreshToken', 'next-b'), 'the second request’s tokens were never stored').to.equal(undefined);
      expect(await direct('AccessToken', 'access-b')).to.equal(undefined);
      expect(await direct('RefreshToken', 'next-a'), 'the first request’s tokens are revoked with the grant').to.equal(undefined);
      expect(await direct('Grant', 'grant-r')).to.equal(undefined);
    });

    it('answers a read made after a lost consumption with invalid_grant, as the engine answers a replay', async () => {
      const { writes, Deferred } = await setup();
      await new Adapter('AuthorizationCode').upsert('code-read', { jti: 'code-read', grantId: 'grant-read' }, 60);
      await new Adapter('AuthorizationCode').consume('code-read');
      const thrown = await writes.around(async () => {
        await new Deferred('AuthorizationCode').consume('code-read');
        await new Deferred('AccessToken').upsert('access-read', { jti: 'access-read', grantId: 'grant-read' }, 60);
        // A read writes the queue first: the lost consumption surfaces here, inside the engine.
        await new Deferred('Grant').find('grant-read');
      }).catch((err: unknown) => err);
      expect(thrown).to.be.instanceOf(errors.InvalidGrant);
      expect(await new Adapter('AccessToken').find('access-read')).to.equal(undefined);
    });

    it('stores nothing either when the consumed row is also written again (the one-by-one way, in a transaction)', async () => {
      const queries = createOidcPayloadQueries(await testDatabase());
      const writes = createWriteBehind(queries, await testDatabase());
      const Deferred = createPostgresAdapter(queries, clock, writes);
      await new Adapter('AuthorizationCode').upsert('code-m', { jti: 'code-m', grantId: 'grant-m' }, 60);
      await new Adapter('AuthorizationCode').consume('code-m');
      const second = await writes.around(async () => {
        await new Deferred('AccessToken').upsert('access-m', { jti: 'access-m', grantId: 'grant-m' }, 60);
        await new Deferred('AuthorizationCode').consume('code-m');
        await new Deferred('AuthorizationCode').upsert('code-m', { jti: 'code-m', grantId: 'grant-m', touched: true }, 60);
      }).catch((err: unknown) => err);
      expect(second).to.be.instanceOf(TokenReusedError);
      expect(await new Adapter('AccessToken').find('access-m')).to.equal(undefined);
      expect(await new Adapter('AuthorizationCode').find('code-m')).to.equal(undefined);
    });

    it('keeps the last save of a row saved twice, and the deletion of a row saved then deleted', async () => {
      const { writes, Deferred, direct } = await setup();
      await writes.around(async () => {
        await new Deferred('Session').upsert('s1', { jti: 's1', uid: 'u1', accountId: 'first', kind: 'Session' }, 60);
        await new Deferred('Session').upsert('s1', { jti: 's1', uid: 'u1', accountId: 'second', kind: 'Session' }, 60);
        await new Deferred('Grant').upsert('g2', { jti: 'g2', accountId: 'acc_1', kind: 'Grant' }, 60);
        await new Deferred('Grant').destroy('g2');
      });
      expect(await direct('Session', 's1')).to.deep.include({ accountId: 'second' });
      expect(await direct('Grant', 'g2')).to.equal(undefined);
    });

    describe('with the application\'s own writes joined to the batch (defer)', () => {
      async function joinedSetup() {
        const db = await testDatabase();
        const queries = createOidcPayloadQueries(db);
        const statements: string[] = [];
        const counted = { ...db, query: (sql: string, params?: readonly unknown[]) => { statements.push(sql); return db.query(sql, params); } } as typeof db;
        const writes = createWriteBehind(createOidcPayloadQueries(counted), counted);
        const Deferred = createPostgresAdapter(queries, clock, writes);
        const audit = (type: string | null) => ({ sql: 'INSERT INTO security_events (occurred_at, type, account_id) VALUES ($1::timestamptz, $2::text, $3::text)', params: [new Date(now), type, 'acc_joined'] });
        const auditRows = async () => (await db.query<{ type: string }>("SELECT type FROM security_events WHERE account_id = 'acc_joined' ORDER BY id")).rows.map((r) => r.type);
        return { writes, Deferred, statements, audit, auditRows, direct: (model: string, id: string) => new Adapter(model).find(id) };
      }

      it('stores them in the same statement as the engine\'s writes; outside a request they are refused to the caller', async () => {
        const { writes, Deferred, statements, audit, auditRows, direct } = await joinedSetup();
        expect(writes.defer(audit('outside'))).to.equal(false);
        await writes.around(async () => {
          await new Deferred('Interaction').upsert('uid-j', { jti: 'uid-j', kind: 'Interaction' }, 60);
          expect(writes.defer(audit('login.succeeded'))).to.equal(true);
          expect(writes.defer({ sql: 'DELETE FROM throttles WHERE key = ANY($1::text[])', params: [['password:s:joined']] })).to.equal(true);
          expect(await auditRows()).to.deep.equal([]);
        });
        expect(statements).to.have.length(1);
        expect(statements[0]).to.match(/INSERT INTO oidc_payloads/).and.match(/INSERT INTO security_events/).and.match(/DELETE FROM throttles/);
        expect(await auditRows()).to.deep.equal(['login.succeeded']);
        expect(await direct('Interaction', 'uid-j')).to.not.equal(undefined);
      });

      it('keeps the order of two rows of one table (the parts of one statement have none)', async () => {
        const { writes, Deferred, audit, auditRows } = await joinedSetup();
        await writes.around(async () => {
          await new Deferred('Interaction').upsert('uid-o', { jti: 'uid-o', kind: 'Interaction' }, 60);
          for (const type of ['first', 'second', 'third']) writes.defer(audit(type));
        });
        expect(await auditRows()).to.deep.equal(['first', 'second', 'third']);
      });

      it('stores none of the batch when one of its writes fails, and that failure is the request\'s', async () => {
        const { writes, Deferred, audit, auditRows, direct } = await joinedSetup();
        // type is NOT NULL: the statement fails as it runs, after the engine's part was planned.
        const err = await writes.around(async () => {
          await new Deferred('Interaction').upsert('uid-k', { jti: 'uid-k', kind: 'Interaction' }, 60);
          writes.defer(audit(null));
        }).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(Error);
        expect(await direct('Interaction', 'uid-k')).to.equal(undefined);
        expect(await auditRows()).to.deep.equal([]);
        // A request that failed by itself: the batch's failure is what it answers, not its own error.
        const second = await writes.around(async () => {
          writes.defer(audit(null));
          throw new Error('the step failed');
        }).then(() => undefined, (e: Error) => e);
        expect((second as Error).message).to.not.equal('the step failed');
      });

      it('stores a row saved then deleted as its deletion, in the one statement; a deletion then a save keeps its order in one transaction', async () => {
        const { writes, Deferred, statements, audit, auditRows, direct } = await joinedSetup();
        await new Adapter('Grant').upsert('g-j', { jti: 'g-j', accountId: 'acc_0', kind: 'Grant' }, 60);
        await writes.around(async () => {
          await new Deferred('Grant').upsert('g-j', { jti: 'g-j', accountId: 'acc_1', kind: 'Grant' }, 60);
          await new Deferred('Grant').destroy('g-j');
          writes.defer(audit('grant.revoked'));
        });
        expect(statements).to.have.length(1);
        expect(statements[0]).to.match(/DELETE FROM oidc_payloads/).and.not.match(/INSERT INTO oidc_payloads/);
        expect(await direct('Grant', 'g-j')).to.equal(undefined);
        expect(await auditRows()).to.deep.equal(['grant.revoked']);
        const failed = await writes.around(async () => {
          await new Deferred('Grant').upsert('g-k', { jti: 'g-k', accountId: 'acc_1', kind: 'Grant' }, 60);
          await new Deferred('Grant').destroy('g-k');
          await new Deferred('Grant').upsert('g-k', { jti: 'g-k', accountId: 'acc_2', kind: 'Grant' }, 60);
          writes.defer(audit(null));
        }).then(() => false, () => true);
        expect(failed).to.equal(true);
        expect(await direct('Grant', 'g-k'), 'rolled back with the failed joined write').to.equal(undefined);
      });

      describe('a request reading its own queued save (an interaction finished and resumed in one request)', () => {
        it('answers the read from the queue and stores the save, its deletion and the joined writes in one statement', async () => {
          const { writes, Deferred, statements, audit, auditRows, direct } = await joinedSetup();
          await new Adapter('Interaction').upsert('uid-r', { jti: 'uid-r', kind: 'Interaction', params: { client_id: 'c' } }, 60);
          await writes.around(async () => {
            // The step saves the result …
            await new Deferred('Interaction').upsert('uid-r', { jti: 'uid-r', kind: 'Interaction', params: { client_id: 'c' }, result: { login: { accountId: 'acc_r', at: new Date(now) } } }, 60);
            writes.defer(audit('login.succeeded'));
            // … the resume reads it: what the database would give back (jsonb), nothing written yet.
            const read = await new Deferred('Interaction').find('uid-r');
            expect(read).to.deep.include({ jti: 'uid-r', result: { login: { accountId: 'acc_r', at: new Date(now).toISOString() } } });
            expect(statements).to.deep.equal([]);
            expect((await direct('Interaction', 'uid-r'))?.result).to.equal(undefined);
            // … and ends it: deleted, with the session it saves.
            await new Deferred('Interaction').destroy('uid-r');
            await new Deferred('Session').upsert('s-r', { jti: 's-r', uid: 'su-r', accountId: 'acc_r', kind: 'Session' }, 60);
            expect(await new Deferred('Interaction').find('uid-r'), 'deleted in the queue').to.equal(undefined);
            expect(statements).to.deep.equal([]);
          });
          expect(statements).to.have.length(1);
          expect(await direct('Interaction', 'uid-r')).to.equal(undefined);
          expect(await direct('Session', 's-r')).to.deep.include({ accountId: 'acc_r' });
          expect(await auditRows()).to.deep.equal(['login.succeeded']);
        });

        it('writes the queue first when the save has expired, or an application write to the engine\'s table is queued', async () => {
          const { writes, Deferred, statements } = await joinedSetup();
          await writes.around(async () => {
            await new Deferred('Interaction').upsert('uid-x', { jti: 'uid-x', kind: 'Interaction' }, -1);
            expect(await new Deferred('Interaction').find('uid-x')).to.equal(undefined);
          });
          statements.length = 0;
          await writes.around(async () => {
            await new Deferred('Interaction').upsert('uid-y', { jti: 'uid-y', kind: 'Interaction' }, 60);
            writes.defer({ sql: 'DELETE FROM oidc_payloads WHERE account_id = $1::text', params: ['acc_nobody'] });
            expect(await new Deferred('Interaction').find('uid-y')).to.deep.include({ jti: 'uid-y' });
            expect(statements.length, 'written before the read').to.be.greaterThan(0);
          });
        });
      });
    });

    describe('reading a token\'s session and grant ahead (ReadAhead)', () => {
      async function aheadSetup() {
        const db = await testDatabase();
        const statements: string[] = [];
        const counted = { ...db, query: (sql: string, params?: readonly unknown[]) => { statements.push(sql); return db.query(sql, params); } } as typeof db;
        const queries = createOidcPayloadQueries(counted);
        const writes = createWriteBehind(queries, counted);
        const Reading = createPostgresAdapter(queries, clock, writes);
        // A session, its grant, and an access token bound to both, as the engine stores them.
        await new Adapter('Session').upsert('cookie-a', { jti: 'cookie-a', uid: 'uid-a', accountId: 'acc_1', authorizations: { web: { grantId: 'grant-a' } }, kind: 'Session' } as never, 600);
        await new Adapter('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', openid: { scope: 'openid email' }, kind: 'Grant' } as never, 600);
        await new Adapter('AccessToken').upsert('access-a', { jti: 'access-a', accountId: 'acc_1', clientId: 'web', grantId: 'grant-a', sessionUid: 'uid-a', expiresWithSession: true, kind: 'AccessToken' } as never, 60);
        statements.length = 0;
        return { writes, Reading, statements };
      }
      /** What the engine reads on userinfo: the token, the session it is bound to, its grant. */
      const engineReads = async (Reading: ReturnType<typeof createPostgresAdapter>, token = 'access-a', model = 'AccessToken') => {
        const found = await new Reading(model).find(token);
        const session = found ? await new Reading('Session').findByUid(found.sessionUid as string) : undefined;
        const grant = found ? await new Reading('Grant').find(found.grantId as string) : undefined;
        return { found, session, grant };
      };

      it('reads all three in one statement, and each is what a lookup of its own returns', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        const ahead = await writes.reading(() => engineReads(Reading));
        expect(statements, 'one statement for the three').to.have.length(1);
        statements.length = 0;
        const alone = await engineReads(Reading);
        expect(statements, 'outside a request: one each').to.have.length(3);
        expect(ahead).to.deep.equal(alone);
        expect(ahead.session).to.deep.include({ accountId: 'acc_1', uid: 'uid-a' });
        expect(ahead.grant).to.deep.include({ jti: 'grant-a', clientId: 'web' });
        // The batch of a token endpoint's request reads ahead too (a refresh, a code's exchange).
        statements.length = 0;
        expect(await writes.around(() => engineReads(Reading))).to.deep.equal(alone);
        expect(statements).to.have.length(1);
      });

      it('takes each row once: a second read of it asks the database', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        await writes.reading(async () => {
          await engineReads(Reading);
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ jti: 'grant-a' });
          expect(await new Reading('Session').findByUid('uid-a')).to.deep.include({ uid: 'uid-a' });
        });
        expect(statements).to.have.length(3);
      });

      it('reads nothing stale: a grant or session gone, expired or written in the request is not returned from before', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        // Expired by the clock: looked up and known to be absent, no statement of its own.
        await new Adapter('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant' } as never, 30);
        now += 31_000;
        statements.length = 0;
        let reads = await writes.reading(() => engineReads(Reading));
        expect(reads.found).to.deep.include({ grantId: 'grant-a' });
        expect(reads.grant).to.equal(undefined);
        expect(reads.session).to.deep.include({ uid: 'uid-a' });
        expect(statements).to.have.length(1);
        // A write in the request drops what was read ahead: the next read sees the write.
        await new Adapter('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 1 } as never, 600);
        reads = await writes.around(async () => {
          const found = await new Reading('AccessToken').find('access-a');
          await new Reading('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 2 } as never, 600);
          return { found, session: undefined, grant: await new Reading('Grant').find('grant-a') };
        });
        expect(reads.grant).to.deep.include({ rev: 2 });
        // A session signed out (destroyed) is absent from the statement that finds the token.
        await new Adapter('Session').destroy('cookie-a');
        reads = await writes.reading(() => engineReads(Reading));
        expect(reads.session).to.equal(undefined);
        expect(reads.grant).to.deep.include({ rev: 2 });
      });

      it('keeps nothing from a lookup that was in flight across a write of the request', async () => {
        const { writes, Reading } = await aheadSetup();
        await writes.around(async () => {
          const lookup = new Reading('AccessToken').find('access-a');
          // A write queued while the lookup runs (the engine's branches may interleave).
          await new Reading('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 3 } as never, 600);
          await lookup;
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ rev: 3 });
        });
      });

      it('looks up no session for a token that does not expire with it, and no grant for one without', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        await new Adapter('RefreshToken').upsert('refresh-a', { jti: 'refresh-a', accountId: 'acc_1', clientId: 'web', grantId: 'grant-a', sessionUid: 'uid-a', kind: 'RefreshToken' } as never, 600);
        await new Adapter('AuthorizationCode').upsert('code-a', { jti: 'code-a', accountId: 'acc_1', clientId: 'web', kind: 'AuthorizationCode' } as never, 60);
        statements.length = 0;
        await writes.reading(async () => {
          expect(await new Reading('RefreshToken').find('refresh-a')).to.deep.include({ grantId: 'grant-a' });
          expect(writes.readAhead()!.take(aheadKey('Session', 'uid-a', 'uid'))).to.equal(undefined);
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ jti: 'grant-a' });
          expect(await new Reading('AuthorizationCode').find('code-a')).to.deep.include({ jti: 'code-a' });
          expect(await new Reading('Session').findByUid('uid-a')).to.deep.include({ uid: 'uid-a' });
        });
        expect(statements, 'refresh token with its grant; code; the session by its own lookup').to.have.length(3);
      });

      it('reads an expired session as absent, as its own lookup would', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        await new Adapter('Session').upsert('cookie-a', { jti: 'cookie-a', uid: 'uid-a', accountId: 'acc_1', kind: 'Session' } as never, 30);
        now += 31_000;
        statements.length = 0;
        const reads = await writes.reading(() => engineReads(Reading));
        expect(reads.found).to.deep.include({ sessionUid: 'uid-a' });
        expect(reads.session).to.equal(undefined);
        expect(reads.grant).to.deep.include({ jti: 'grant-a' });
        expect(statements).to.have.length(1);
      });

      it('keeps nothing once the request\'s scope has ended, and a batch inside a reading scope drops its rows', async () => {
        const { writes, Reading } = await aheadSetup();
        let late!: () => Promise<unknown>;
        await writes.reading(async () => {
          await new Reading('AccessToken').find('access-a');
          late = () => new Reading('Grant').find('grant-a');
        });
        await new Adapter('Grant').destroy('grant-a');
        expect(await late(), 'a promise running after the request reads the database').to.equal(undefined);
        await new Adapter('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 1 } as never, 600);
        await writes.reading(async () => {
          await new Reading('AccessToken').find('access-a');
          await writes.around(() => new Reading('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 2 } as never, 600));
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ rev: 2 });
        });
      });

      it('writes straight to the database in a reading scope: nothing is queued, nothing joins a batch', async () => {
        const { writes, Reading } = await aheadSetup();
        await writes.reading(async () => {
          expect(writes.pending()).to.equal(undefined);
          expect(writes.defer({ sql: 'SELECT 1', params: [] })).to.equal(false);
          await new Reading('AccessToken').find('access-a');
          await new Reading('Grant').upsert('grant-a', { jti: 'grant-a', accountId: 'acc_1', clientId: 'web', kind: 'Grant', rev: 4 } as never, 600);
          expect(await new Adapter('Grant').find('grant-a'), 'stored at once').to.deep.include({ rev: 4 });
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ rev: 4 });
        });
      });

      it('lets a read that comes while the queue is being written wait for that write', async () => {
        const { writes, Reading } = await aheadSetup();
        await writes.around(async () => {
          await new Reading('AccessToken').upsert('access-b', { jti: 'access-b', accountId: 'acc_1', clientId: 'web', grantId: 'grant-a', kind: 'AccessToken' } as never, 60);
          // The first read writes the queue; the second finds it empty while that write runs.
          const [first, second] = await Promise.all([new Reading('AccessToken').find('access-b'), new Reading('AccessToken').find('access-b')]);
          expect(first).to.deep.include({ jti: 'access-b' });
          expect(second).to.deep.include({ jti: 'access-b' });
        });
      });

      it('looks one value up under several models in one statement when they are asked for in the same turn', async () => {
        const { writes, Reading, statements } = await aheadSetup();
        await new Adapter('ClientCredentials').upsert('shared-value', { jti: 'shared-value', clientId: 'svc', kind: 'ClientCredentials' } as never, 60);
        await new Adapter('AccessToken').upsert('shared-value', { jti: 'shared-value', clientId: 'web', grantId: 'grant-a', kind: 'AccessToken' } as never, 60);
        statements.length = 0;
        await writes.reading(async () => {
          // As introspection asks (oidc-provider's findToken): side by side, then another model later.
          const [access, credentials] = await Promise.all([new Reading('AccessToken').find('access-a'), new Reading('ClientCredentials').find('access-a')]);
          expect(access).to.deep.include({ jti: 'access-a', grantId: 'grant-a' });
          expect(credentials).to.equal(undefined);
          expect(statements, 'one statement for both models').to.have.length(1);
          expect(await new Reading('RefreshToken').find('access-a')).to.equal(undefined);
          expect(statements, 'a later turn: a statement of its own').to.have.length(2);
          const [a, c] = await Promise.all([new Reading('AccessToken').find('shared-value'), new Reading('ClientCredentials').find('shared-value')]);
          expect(a).to.deep.include({ clientId: 'web', kind: 'AccessToken' });
          expect(c).to.deep.include({ clientId: 'svc', kind: 'ClientCredentials' });
          expect(statements).to.have.length(3);
          // One model twice in a turn: each caller gets a payload of its own.
          const [first, second] = await Promise.all([new Reading('AccessToken').find('shared-value'), new Reading('AccessToken').find('shared-value')]);
          expect(first).to.deep.equal(second);
          expect(first).to.not.equal(second);
          expect(statements, 'the same model twice: a lookup of its own').to.have.length(5);
          // The grant of the last lookups is still taken as read ahead, without a statement.
          expect(await new Reading('Grant').find('grant-a')).to.deep.include({ jti: 'grant-a' });
          expect(statements).to.have.length(5);
        });
      });

      it('gives every caller of a coalesced lookup the statement\'s failure, and the next turn a statement of its own', async () => {
        const { writes } = await aheadSetup();
        const db = await testDatabase();
        let fail = true;
        const failing = { ...db, query: (sql: string, params?: readonly unknown[]) => {
          if (fail && /t\.model IN/.test(sql)) {
            fail = false;
            return Promise.reject(new Error('the database went away'));
          }
          return db.query(sql, params);
        } } as typeof db;
        const Failing = createPostgresAdapter(createOidcPayloadQueries(failing), clock, writes);
        await writes.reading(async () => {
          const outcomes = await Promise.allSettled([new Failing('AccessToken').find('access-a'), new Failing('ClientCredentials').find('access-a')]);
          expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'found'))).to.deep.equal(['the database went away', 'the database went away']);
          expect(await new Failing('AccessToken').find('access-a')).to.deep.include({ jti: 'access-a' });
        });
      });

      it('keeps a generic plan for the lookup of 1 to 4 models once the table has statistics (embedded engine: one connection to read it from)', async function () {
        const db = await testDatabase();
        if (db.engine !== 'pglite') this.skip();
        await db.query(`INSERT INTO oidc_payloads (model, id_hash, payload, grant_id, expires_at)
          SELECT (ARRAY['AccessToken','RefreshToken','ClientCredentials','Grant','Session'])[1 + i % 5], md5(i::text), '{"a":1}'::jsonb,
            CASE WHEN i % 5 < 2 THEN 'g' || i END, now() + interval '1 hour' FROM generate_series(1, 20000) i`);
        await db.query('ANALYZE oidc_payloads');
        const queries = createOidcPayloadQueries(db);
        const models = ['AccessToken', 'ClientCredentials', 'RefreshToken', 'AuthorizationCode'];
        for (let n = 1; n <= 4; n += 1) for (let i = 0; i < 12; i += 1) await queries.findTokens(models.slice(0, n), `h${i}`, new Date(now));
        const { rows } = await db.query<{ statement: string; generic_plans: string; custom_plans: string }>(
          "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%t.model IN (%'");
        expect(rows, 'one named statement per number of models').to.have.length(4);
        // With the models as an array the planner costed ten and planned every execution anew (0 generic).
        for (const row of rows) expect(Number(row.generic_plans), row.statement.slice(-120)).to.be.greaterThan(0);
      });

      it('computes a grant\'s row key in SQL exactly as the adapter stores it, whatever the id holds', async () => {
        const { writes, Reading } = await aheadSetup();
        for (const grantId of ['gr_ÿ€😀', 'a'.repeat(300), '+/=?']) {
          await new Adapter('Grant').upsert(grantId, { jti: grantId, accountId: 'acc_1', clientId: 'web', kind: 'Grant' } as never, 600);
          await new Adapter('AccessToken').upsert(`t-${grantId}`, { jti: `t-${grantId}`, accountId: 'acc_1', clientId: 'web', grantId, kind: 'AccessToken' } as never, 60);
          await writes.reading(async () => {
            await new Reading('AccessToken').find(`t-${grantId}`);
            expect(writes.readAhead()!.take(aheadKey('Grant', grantId)), grantId).to.deep.include({ payload: { accountId: 'acc_1', clientId: 'web', kind: 'Grant' } });
          });
        }
      });
    });

    it('writes what was queued even when the request fails, and straight away after it ended', async () => {
      const { writes, Deferred, direct } = await setup();
      let late: Promise<void> | undefined;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const failed = await writes.around(async () => {
        await new Deferred('AccessToken').upsert('before-error', { jti: 'before-error', kind: 'AccessToken' }, 60);
        late = gate.then(() => new Deferred('AccessToken').upsert('after-end', { jti: 'after-end', kind: 'AccessToken' }, 60));
        throw new Error('boom');
      }).catch((err: Error) => err.message);
      expect(failed).to.equal('boom');
      expect(await direct('AccessToken', 'before-error')).to.not.equal(undefined);
      release();
      await late;
      expect(await direct('AccessToken', 'after-end')).to.not.equal(undefined);
    });
  });
});
