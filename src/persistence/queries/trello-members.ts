import type { Queryable } from '../db.ts';
import { booleanArray, textArray } from '../array-literal.ts';

export interface TrelloEmail {
  email: string;
  verified: boolean;
  is_primary: boolean;
  last_used_at: Date | null;
  added_at: Date | null;
}

export interface TrelloMemberRow {
  member_id: string;
  username: string;
  full_name: string | null;
  password_hash: string | null;
  google_sub: string | null;
  google_email: string | null;
  enterprise_id: string | null;
  enterprise_name: string | null;
  linked_account_id: string | null;
  linked_at: Date | null;
  linked_by: string | null;
  emails: TrelloEmail[];
}

/** What an address already is here: see `addressesInUse`. */
export type AddressUse = 'member' | 'account' | 'retired';

export interface ImportedMember {
  memberId: string;
  username: string;
  fullName: string | null;
  passwordHash: string | null;
  googleSub: string | null;
  googleEmail: string | null;
  enterpriseId: string | null;
  enterpriseName: string | null;
  emails: { email: string; verified: boolean; primary: boolean; lastUsedAt: Date | null; addedAt: Date | null }[];
}

const memberColumns = (list: readonly ImportedMember[]) => {
  const text = (key: keyof ImportedMember) => textArray(list.map((m) => m[key] as string | null));
  return [text('memberId'), text('username'), text('fullName'), text('passwordHash'), text('googleSub'), text('googleEmail'), text('enterpriseId'), text('enterpriseName')];
};

const emailColumns = (list: readonly ImportedMember[]) => {
  const ids: string[] = [], emails: string[] = [], verified: boolean[] = [], primary: boolean[] = [], lastUsed: (string | null)[] = [], added: (string | null)[] = [];
  for (const m of list) {
    for (const e of m.emails) {
      ids.push(m.memberId);
      emails.push(e.email);
      verified.push(e.verified);
      primary.push(e.primary);
      // ISO strings rather than Dates: the driver's Date formatting is slow, the instant the same.
      lastUsed.push(e.lastUsedAt ? e.lastUsedAt.toISOString() : null);
      added.push(e.addedAt ? e.addedAt.toISOString() : null);
    }
  }
  return [textArray(ids), textArray(emails), booleanArray(verified), booleanArray(primary), textArray(lastUsed), textArray(added)];
};

const verifiedColumns = (list: readonly ImportedMember[]) => {
  const ids: string[] = [], emails: string[] = [];
  for (const m of list) {
    for (const e of m.emails) {
      if (!e.verified) continue;
      ids.push(m.memberId);
      emails.push(e.email);
    }
  }
  return [textArray(ids), textArray(emails)];
};

const MEMBER = `m.member_id, m.username, m.full_name, m.password_hash, m.google_sub, m.google_email, m.enterprise_id,
  m.enterprise_name, m.linked_account_id, m.linked_at, m.linked_by,
  COALESCE((SELECT json_agg(json_build_object('email', e.email, 'verified', e.verified, 'is_primary', e.is_primary,
    'last_used_at', e.last_used_at, 'added_at', e.added_at)) FROM trello_member_emails e WHERE e.member_id = m.member_id), '[]'::json) AS emails`;

/** JSON aggregation gives dates as strings; callers get Dates. */
function hydrate(row: TrelloMemberRow & { emails: (Omit<TrelloEmail, 'last_used_at' | 'added_at'> & { last_used_at: string | null; added_at: string | null })[] }): TrelloMemberRow {
  return {
    ...row,
    emails: row.emails.map((e) => ({ ...e, last_used_at: e.last_used_at ? new Date(e.last_used_at) : null, added_at: e.added_at ? new Date(e.added_at) : null })),
  };
}

/**
 * Legacy Trello members and their addresses (`trello_members` with its child
 * `trello_member_emails`, migration 0013). A query that also reads `accounts` or
 * `retired_emails` is here when what it answers is about members (`addressesInUse`,
 * `memberByOwnedEmail`, `linkableByAccount`).
 */
export function createTrelloMemberQueries(db: Queryable) {
  async function findBy(where: string, params: unknown[], tx: Queryable = db, lock = false): Promise<TrelloMemberRow[]> {
    const { rows } = await tx.query<Parameters<typeof hydrate>[0]>(`SELECT ${MEMBER} FROM trello_members m WHERE ${where}${lock ? ' FOR UPDATE OF m' : ''}`, params);
    return rows.map(hydrate);
  }

  return {
    findByMemberId: async (memberId: string, tx: Queryable = db, lock = false) => (await findBy('m.member_id = $1', [memberId], tx, lock))[0],

    /** Members with `email` among their addresses (normally one; an address may have moved between members). */
    findByEmail: (email: string, tx: Queryable = db) =>
      findBy('m.member_id IN (SELECT member_id FROM trello_member_emails WHERE lower(email) = lower($1))', [email], tx),

    findByUsername: async (username: string) => (await findBy('lower(m.username) = lower($1)', [username]))[0],

    findByGoogleSub: async (sub: string) => (await findBy('m.google_sub = $1', [sub]))[0],

    findByAccountId: async (accountId: string, tx: Queryable = db) => (await findBy('m.linked_account_id = $1', [accountId], tx))[0],

    /** Members with `email` among their *verified* addresses: only those count as proof. */
    findByVerifiedEmail: (email: string, tx: Queryable = db) =>
      findBy('m.member_id IN (SELECT member_id FROM trello_member_emails WHERE lower(email) = lower($1) AND verified)', [email], tx),

    /**
     * The member an address still resolves to, for Trello's status API (decision 0020): a linked
     * member by its account's current address; else an unlinked member that has the address
     * verified, or unverified while no account has it. Retired addresses are asked separately.
     * Addresses dropped at linking, or given up since, resolve to nothing.
     */
    async memberByOwnedEmail(email: string): Promise<{ member_id: string; account_id: string | null } | undefined> {
      const { rows } = await db.query<{ member_id: string; account_id: string | null }>(
        `SELECT member_id, account_id FROM (
           SELECT m.member_id, a.id AS account_id, 0 AS rank
           FROM accounts a JOIN trello_members m ON m.linked_account_id = a.id
           WHERE lower(a.email) = lower($1)
           UNION ALL
           SELECT m.member_id, NULL, CASE WHEN e.verified THEN 1 ELSE 2 END
           FROM trello_member_emails e JOIN trello_members m ON m.member_id = e.member_id
           WHERE lower(e.email) = lower($1) AND m.linked_account_id IS NULL
             AND (e.verified OR NOT EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower($1)))
         ) AS owners ORDER BY rank, member_id LIMIT 1`,
        [email],
      );
      return rows[0];
    },

    /**
     * After a successful password login: does an unlinked member have the account's address
     * verified, while the account has no member yet? One indexed read (the link is offered).
     */
    async linkableByAccount(accountId: string, email: string): Promise<boolean> {
      const { rows } = await db.query(
        `SELECT 1 FROM trello_member_emails e JOIN trello_members m ON m.member_id = e.member_id
         WHERE lower(e.email) = lower($2) AND e.verified AND m.linked_account_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM trello_members l WHERE l.linked_account_id = $1)
         LIMIT 1`,
        [accountId, email],
      );
      return rows.length > 0;
    },

    /** The member id linked to an account, for the `trello_member_id` claim: one indexed read. */
    async memberIdOf(accountId: string): Promise<string | undefined> {
      const { rows } = await db.query<{ member_id: string }>('SELECT member_id FROM trello_members WHERE linked_account_id = $1', [accountId]);
      return rows[0]?.member_id;
    },

    /**
     * Before a batch is written, what each line would run into, in one statement: whether its
     * member is already here, and linked (then its addresses and Google subject stay), and which
     * other member holds its Google subject. Absent from the answer: a new member whose Google
     * subject, if any, is free. Nothing is locked here: the writes lock what they change, and
     * check again under that lock that the member is still unlinked.
     *
     * Every lookup is an index probe per line, whatever the tables' size and statistics (the
     * OFFSET 0 keeps the planner from turning them into a join that scans a whole table): the
     * import stays as fast at the millionth line as at the first (issue 14).
     */
    async importPrecheck(tx: Queryable, lines: ImportedMember[]): Promise<Map<string, { present: boolean; linked: boolean; subHolder: string | null }>> {
      const { rows } = await tx.query<{ member_id: string; present: boolean; linked: boolean; holder: string | null }>(
        `SELECT l.member_id, m.member_id IS NOT NULL AS present, m.linked_account_id IS NOT NULL AS linked,
                CASE WHEN l.google_sub IS NOT NULL THEN (SELECT h.member_id FROM trello_members h WHERE h.google_sub = l.google_sub AND h.member_id <> l.member_id) END AS holder
         FROM unnest($1::text[], $2::text[]) AS l (member_id, google_sub)
         LEFT JOIN LATERAL (SELECT x.member_id, x.linked_account_id FROM trello_members x WHERE x.member_id = l.member_id OFFSET 0) AS m ON true
         WHERE m.member_id IS NOT NULL OR (l.google_sub IS NOT NULL AND EXISTS (SELECT 1 FROM trello_members h WHERE h.google_sub = l.google_sub AND h.member_id <> l.member_id))`,
        [textArray(lines.map((l) => l.memberId)), textArray(lines.map((l) => l.googleSub))],
      );
      return new Map(rows.map((r) => [r.member_id, { present: r.present, linked: r.linked, subHolder: r.holder }]));
    },

    /**
     * Of the verified addresses of `members` (unlinked, as just written), those verified on
     * another unlinked member too, with those members: one index probe per address.
     */
    async sharedVerifiedAddresses(tx: Queryable, members: ImportedMember[]): Promise<{ member_id: string; email: string; others: string[] }[]> {
      if (!members.some((m) => m.emails.some((e) => e.verified))) return [];
      const { rows } = await tx.query<{ member_id: string; email: string; others: string[] }>(
        `SELECT b.member_id, b.email, array_agg(o.member_id ORDER BY o.member_id) AS others
         FROM unnest($1::text[], $2::text[]) AS b (member_id, email)
         CROSS JOIN LATERAL (
           SELECT x.member_id FROM trello_member_emails x JOIN trello_members om ON om.member_id = x.member_id AND om.linked_account_id IS NULL
           WHERE lower(x.email) = lower(b.email) AND x.verified AND x.member_id <> b.member_id OFFSET 0
         ) AS o
         GROUP BY b.member_id, b.email
         ORDER BY b.member_id, b.email`,
        verifiedColumns(members),
      );
      return rows;
    },

    /**
     * Writes a batch of imported members, each id once, in the caller's transaction, after
     * `importPrecheck`: `linked` are the members already linked — only their names and
     * Enterprise are refreshed (their addresses, hashes and Google subject belong to the account
     * now); `present` the others already here, whose addresses become the line's. Returns the
     * members that were new.
     *
     * Written for large batches (issue 14): a handful of set-based statements whatever the
     * batch's size, each an index probe or write per row, and on a re-import only what changed
     * is written — a member or an address equal to its line is not rewritten (no dead row, no
     * index entry, no WAL), so a run over the same file mostly reads.
     */
    async upsertBatch(tx: Queryable, members: ImportedMember[], known: { present: ReadonlySet<string>; linked: ReadonlySet<string> }, now: Date): Promise<{ inserted: string[] }> {
      const fresh = new Set<string>();
      // Members the precheck did not find (all of them in a first import): inserted without
      // looking them up again. One that another writer inserted since is left to the upsert below.
      let others = members.filter((m) => known.present.has(m.memberId));
      const absent = members.filter((m) => !known.present.has(m.memberId));
      if (absent.length) {
        const { rows } = await tx.query<{ member_id: string }>(
          `INSERT INTO trello_members (member_id, username, full_name, password_hash, google_sub, google_email, enterprise_id, enterprise_name, imported_at, updated_at)
           SELECT u.*, $9::timestamptz, $9::timestamptz
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             AS u (member_id, username, full_name, password_hash, google_sub, google_email, enterprise_id, enterprise_name)
           ON CONFLICT (member_id) DO NOTHING
           RETURNING member_id`,
          [...memberColumns(absent), now],
        );
        for (const r of rows) fresh.add(r.member_id);
        if (rows.length < absent.length) others = others.concat(absent.filter((m) => !fresh.has(m.memberId)));
      }
      const { rows } = others.length ? await tx.query<{ member_id: string; inserted: boolean }>(
        // A member equal to its line is left out before the upsert, which would lock it even unchanged.
        `INSERT INTO trello_members AS m (member_id, username, full_name, password_hash, google_sub, google_email, enterprise_id, enterprise_name, imported_at, updated_at)
         SELECT u.*, $9::timestamptz, $9::timestamptz
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
           AS u (member_id, username, full_name, password_hash, google_sub, google_email, enterprise_id, enterprise_name)
         LEFT JOIN LATERAL (SELECT * FROM trello_members x WHERE x.member_id = u.member_id OFFSET 0) AS x ON true
         WHERE x.member_id IS NULL
            OR (x.username, x.full_name, x.enterprise_id, x.enterprise_name) IS DISTINCT FROM (u.username, u.full_name, u.enterprise_id, u.enterprise_name)
            OR (x.linked_account_id IS NULL AND (x.password_hash, x.google_sub, x.google_email) IS DISTINCT FROM (u.password_hash, u.google_sub, u.google_email))
         ON CONFLICT (member_id) DO UPDATE SET
           username = excluded.username, full_name = excluded.full_name, updated_at = excluded.updated_at,
           password_hash = CASE WHEN m.linked_account_id IS NULL THEN excluded.password_hash ELSE m.password_hash END,
           google_sub = CASE WHEN m.linked_account_id IS NULL THEN excluded.google_sub ELSE m.google_sub END,
           google_email = CASE WHEN m.linked_account_id IS NULL THEN excluded.google_email ELSE m.google_email END,
           enterprise_id = excluded.enterprise_id, enterprise_name = excluded.enterprise_name
         RETURNING member_id, (xmax = 0) AS inserted`,
        [...memberColumns(others), now],
      ) : { rows: [] };
      for (const r of rows) if (r.inserted) fresh.add(r.member_id);
      const ROWS = 'SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::boolean[], $5::timestamptz[], $6::timestamptz[])';
      // A new member has no addresses yet: inserted, nothing to compare with.
      const added = members.filter((m) => fresh.has(m.memberId));
      if (added.length) await tx.query(`INSERT INTO trello_member_emails (member_id, email, verified, is_primary, last_used_at, added_at) ${ROWS}`, emailColumns(added));
      // An unlinked member imported before: its addresses become the line's. Those it no longer
      // lists go, new ones come, changed ones are updated; an unchanged one is not written.
      const replaced = members.filter((m) => known.present.has(m.memberId) && !known.linked.has(m.memberId) && !fresh.has(m.memberId));
      if (replaced.length) {
        // One statement: the stored addresses of these members (an index probe per member), those
        // the lines no longer list (deleted by row address), those new or changed (upserted);
        // an address equal to its line is neither written nor locked. Only members still
        // unlinked, locked here until the batch commits, are touched: a member linked meanwhile
        // keeps its addresses (they are its account's now).
        await tx.query(
          `WITH n AS (
             SELECT * FROM unnest($2::text[], $3::text[], $4::boolean[], $5::boolean[], $6::timestamptz[], $7::timestamptz[])
               AS n (member_id, email, verified, is_primary, last_used_at, added_at)
           ), c AS (
             SELECT s.* FROM unnest($1::text[]) AS i (member_id)
             CROSS JOIN LATERAL (SELECT e.ctid AS tid, e.member_id, e.email, e.verified, e.is_primary, e.last_used_at, e.added_at
                                 FROM trello_member_emails e WHERE e.member_id = i.member_id OFFSET 0) AS s
           ), gone AS (
             SELECT c.tid, c.member_id FROM c WHERE NOT EXISTS (SELECT 1 FROM n WHERE n.member_id = c.member_id AND n.email = c.email)
           ), changed AS (
             SELECT n.* FROM n LEFT JOIN c ON c.member_id = n.member_id AND c.email = n.email
             WHERE c.member_id IS NULL OR (c.verified, c.is_primary, c.last_used_at, c.added_at) IS DISTINCT FROM (n.verified, n.is_primary, n.last_used_at, n.added_at)
           ), mine AS (
             SELECT m.member_id FROM trello_members m
             WHERE m.member_id = ANY (ARRAY(SELECT member_id FROM gone UNION SELECT member_id FROM changed)) AND m.linked_account_id IS NULL
             FOR NO KEY UPDATE
           ), removed AS (
             DELETE FROM trello_member_emails WHERE ctid = ANY (ARRAY(SELECT tid FROM gone WHERE member_id IN (SELECT member_id FROM mine)))
           )
           INSERT INTO trello_member_emails AS e (member_id, email, verified, is_primary, last_used_at, added_at)
           SELECT * FROM changed WHERE member_id IN (SELECT member_id FROM mine)
           ON CONFLICT (member_id, email) DO UPDATE SET verified = excluded.verified, is_primary = excluded.is_primary,
             last_used_at = excluded.last_used_at, added_at = excluded.added_at`,
          [textArray(replaced.map((m) => m.memberId)), ...emailColumns(replaced)],
        );
      }
      return { inserted: [...fresh] };
    },

    /**
     * Marks the member linked, only if still unlinked. The Trello hash is kept but never accepted
     * again: it only lets the login page recognise the old password and say what to use instead.
     */
    /**
     * The Google sign-in of members linked to the account at or after `since` stops leading to
     * it (an undone email change, decision 0085: an intruder may have linked their own member).
     * The link itself stays, as every link does; a re-import never gives a linked member its
     * Google subject back. How many members lost theirs.
     */
    async cutGoogleSince(tx: Queryable, accountId: string, since: Date): Promise<number> {
      const { rowCount } = await tx.query('UPDATE trello_members SET google_sub = NULL, google_email = NULL WHERE linked_account_id = $1 AND linked_at >= $2 AND google_sub IS NOT NULL', [accountId, since]);
      return rowCount;
    },

    async markLinked(tx: Queryable, memberId: string, accountId: string, by: string, now: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE trello_members SET linked_account_id = $2, linked_at = $4, linked_by = $3, updated_at = $4
         WHERE member_id = $1 AND linked_account_id IS NULL`,
        [memberId, accountId, by, now],
      );
      return rowCount === 1;
    },

    /**
     * Keeps `account_managers` (decision 0030) in step with the Trello Enterprise of linked
     * members among `memberIds`: an Enterprise set or renamed on the member manages its account,
     * one dropped by a re-import no longer does. Unlinked members have no account to manage yet.
     * Two set-based statements, in the caller's transaction (the import's batch, the link).
     */
    async syncEnterpriseManagers(tx: Queryable, memberIds: string[], now: Date): Promise<void> {
      if (!memberIds.length) return;
      await tx.query(
        `INSERT INTO account_managers (account_id, kind, enterprise_id, enterprise_name, trello_member_id, since)
         SELECT m.linked_account_id, 'trello_enterprise', m.enterprise_id, m.enterprise_name, m.member_id, $2
         FROM trello_members m WHERE m.member_id = ANY($1::text[]) AND m.linked_account_id IS NOT NULL AND m.enterprise_id IS NOT NULL
         ON CONFLICT (account_id, kind) DO UPDATE SET enterprise_id = excluded.enterprise_id, enterprise_name = excluded.enterprise_name,
           trello_member_id = excluded.trello_member_id,
           since = CASE WHEN account_managers.enterprise_id = excluded.enterprise_id THEN account_managers.since ELSE excluded.since END`,
        [memberIds, now],
      );
      await tx.query(
        `DELETE FROM account_managers am USING trello_members m
         WHERE am.kind = 'trello_enterprise' AND am.account_id = m.linked_account_id AND m.member_id = ANY($1::text[]) AND m.enterprise_id IS NULL`,
        [memberIds],
      );
    },

    /** Unlinked members after `after`, in id order, for the bulk migration. */
    async unlinkedBatch(after: string, limit: number): Promise<TrelloMemberRow[]> {
      return findBy('m.linked_account_id IS NULL AND m.member_id > $1 ORDER BY m.member_id LIMIT $2', [after, limit]);
    },

    /**
     * Which of `emails` are already an account's address — of an account that has a Trello
     * member (`member`: no member can ever be linked there, one member per account) or not yet
     * (`account`: a member proving that account may still link to it) — or retired for one.
     * One statement for a whole batch of the bulk migration, or a member's addresses in the
     * review. Keys are lower-case; a free address is absent.
     */
    async addressesInUse(emails: string[], tx: Queryable = db): Promise<Map<string, AddressUse>> {
      if (!emails.length) return new Map();
      const { rows } = await tx.query<{ email: string; kind: AddressUse }>(
        `SELECT lower(e) AS email,
                CASE WHEN EXISTS (SELECT 1 FROM accounts a JOIN trello_members m ON m.linked_account_id = a.id WHERE lower(a.email) = lower(e)) THEN 'member'
                     WHEN EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(e)) THEN 'account'
                     ELSE 'retired' END AS kind
         FROM unnest($1::text[]) AS e
         WHERE EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(e))
            OR EXISTS (SELECT 1 FROM retired_emails r WHERE lower(r.email) = lower(e))`,
        [emails],
      );
      return new Map(rows.map((r) => [r.email, r.kind]));
    },

    /**
     * Refreshes the planner's statistics of the member tables after a bulk load (decision 0042):
     * sampled (default_statistics_target rows × 300), so its cost does not grow with the tables.
     */
    async analyze(): Promise<void> {
      await db.query('ANALYZE trello_members, trello_member_emails');
    },

    /**
     * The same on a sample of 3,000 rows instead of 30,000 (statistics target 10), in the caller's
     * transaction, while an import runs: enough for the planner to know the tables' sizes and that
     * addresses are nearly unique, at a sixth of the cost (~50 ms instead of ~300 at 100,000
     * members), which the import waits for. The full `analyze` follows at its end.
     */
    async analyzeSample(tx: Queryable): Promise<void> {
      await tx.query('SET LOCAL default_statistics_target = 10');
      await tx.query('ANALYZE trello_members, trello_member_emails');
    },

    /**
     * After bulk links (decision 0042): the tables a link writes to, so that logins and the
     * status API by email keep their index plans while autovacuum is off or behind.
     */
    async analyzeLinked(): Promise<void> {
      await db.query('ANALYZE accounts, trello_members, retired_emails, account_identities, account_managers, password_reset_tokens, mail_outbox, trello_link_events');
    },

    async countUnlinked(): Promise<number> {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM trello_members WHERE linked_account_id IS NULL');
      return rows[0]?.n ?? 0;
    },

    /**
     * Erasure of closed accounts: the personal data of the linked member goes; the member row
     * and its id stay, as the account row does.
     */
    async forgetAccounts(accountIds: string[]): Promise<void> {
      if (!accountIds.length) return;
      await db.query('DELETE FROM trello_member_emails WHERE member_id IN (SELECT member_id FROM trello_members WHERE linked_account_id = ANY($1::text[]))', [accountIds]);
      await db.query(
        `UPDATE trello_members SET full_name = NULL, password_hash = NULL, google_email = NULL, username = 'erased:' || member_id
         WHERE linked_account_id = ANY($1::text[])`,
        [accountIds],
      );
    },
  };
}

export type TrelloMemberQueries = ReturnType<typeof createTrelloMemberQueries>;
