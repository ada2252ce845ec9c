import type { Queryable } from '../db.ts';
import { emailDomainOf } from './accounts.ts';

/**
 * One new account per member, as the bulk migration writes a whole batch of links at once
 * (src/legacy-trello/bulk-migration.ts): everything `linking.link` writes for one member, for
 * every member of the batch, in a handful of multi-row statements (`unnest` of parallel arrays),
 * in the caller's transaction.
 */
export interface BulkLink {
  memberId: string;
  accountId: string;
  /** Normalised (lower-case): the account's address. */
  email: string;
  name: string | null;
  nickname: string;
  /** The member's other verified addresses, lower-case, that nobody has: retired for the account. */
  retire: string[];
  /** The member's own Google sign-in, attached to the new account. */
  google: { sub: string; email: string | null } | undefined;
  /** SHA-256 of the set-password link's token. */
  tokenHash: string;
  /** `security_events.detail` of the `trello.linked` event. */
  detail: Record<string, unknown>;
}

export interface LockedMember {
  linked: boolean;
  username: string;
  full_name: string | null;
  google_sub: string | null;
  google_email: string | null;
  enterprise_id: string | null;
  enterprise_name: string | null;
  emails: { email: string; verified: boolean; is_primary: boolean; last_used_at: string | null; added_at: string | null }[];
}

export function createTrelloBulkLinkQueries() {
  return {
    /**
     * Locks the members about to be linked (as `linking.link` locks its one member) and returns
     * each one as it is now, so the caller can check that nothing changed since it planned (a
     * re-import, a login that linked one). Dates of addresses come as JSON strings.
     */
    async lockMembers(tx: Queryable, memberIds: string[]): Promise<Map<string, LockedMember>> {
      const { rows } = await tx.query<LockedMember & { member_id: string }>(
        `SELECT m.member_id, m.linked_account_id IS NOT NULL AS linked, m.username, m.full_name, m.google_sub, m.google_email,
                m.enterprise_id, m.enterprise_name,
                COALESCE((SELECT json_agg(json_build_object('email', e.email, 'verified', e.verified, 'is_primary', e.is_primary,
                  'last_used_at', e.last_used_at, 'added_at', e.added_at)) FROM trello_member_emails e WHERE e.member_id = m.member_id), '[]'::json) AS emails
         FROM trello_members m WHERE m.member_id = ANY($1::text[]) ORDER BY m.member_id FOR UPDATE OF m`,
        [memberIds],
      );
      return new Map(rows.map(({ member_id, ...rest }) => [member_id, rest]));
    },

    /** Which of `emails` (lower-case) are an account's address or retired now: none may be, for the batch to be written. */
    async taken(tx: Queryable, emails: string[]): Promise<string[]> {
      if (!emails.length) return [];
      const { rows } = await tx.query<{ email: string }>(
        `SELECT e AS email FROM unnest($1::text[]) AS e
         WHERE EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = e)
            OR EXISTS (SELECT 1 FROM retired_emails r WHERE lower(r.email) = e)`,
        [emails],
      );
      return rows.map((r) => r.email);
    },

    /**
     * Writes the links of a batch. The accounts (verified address, no password), each claimed by
     * the organization holding its address's verified domain as `accounts.insertWith` does
     * (decision 0030); the retired addresses; the members marked linked; their Trello
     * Enterprises as managers (`syncEnterpriseManagers`, in the caller); the Google identities;
     * the "member linked" events for Trello; the audit trail's `trello.linked`; the
     * set-password tokens. Throws `BulkLinkRace` when a member was linked meanwhile; a unique
     * index (an address taken, retired) throws the driver's 23505: the caller's transaction then
     * rolls back whole.
     */
    async write(tx: Queryable, links: BulkLink[], now: Date, expiresAt: Date): Promise<void> {
      if (!links.length) return;
      const col = <T>(f: (l: BulkLink) => T) => links.map(f);
      const accountIds = col((l) => l.accountId);
      await tx.query(
        `WITH inserted AS (
           INSERT INTO accounts (id, email, email_verified, name, nickname, password_hash, password_changed_at)
           SELECT a.id, a.email, true, a.name, a.nickname, NULL, NULL FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS a (id, email, name, nickname)
           RETURNING id
         )
         INSERT INTO account_managers (account_id, kind, organization_id, domain_id, since)
         SELECT i.id, 'organization', d.organization_id, d.id, now()
         FROM organizations o JOIN organization_domains d ON d.organization_id = o.id AND d.state = 'verified'
         JOIN unnest($1::text[], $5::text[]) AS n (id, domain) ON n.domain = d.domain
         JOIN inserted i ON i.id = n.id
         WHERE o.deleted_at IS NULL
         FOR KEY SHARE OF o, d`,
        [accountIds, col((l) => l.email), col((l) => l.name), col((l) => l.nickname), col((l) => emailDomainOf(l.email))],
      );
      const retired = links.flatMap((l) => l.retire.map((email) => ({ email, accountId: l.accountId, reason: `trello:${l.memberId}` })));
      if (retired.length) {
        // No ON CONFLICT here: an address retired meanwhile fails the batch, which is then linked member by member.
        await tx.query(
          `INSERT INTO retired_emails (email, account_id, retired_at, reason)
           SELECT r.email, r.account_id, $4, r.reason FROM unnest($1::text[], $2::text[], $3::text[]) AS r (email, account_id, reason)`,
          [retired.map((r) => r.email), retired.map((r) => r.accountId), retired.map((r) => r.reason), now],
        );
      }
      const { rowCount } = await tx.query(
        `UPDATE trello_members m SET linked_account_id = l.account_id, linked_at = $3, linked_by = 'bulk', updated_at = $3
         FROM unnest($1::text[], $2::text[]) AS l (member_id, account_id)
         WHERE m.member_id = l.member_id AND m.linked_account_id IS NULL`,
        [col((l) => l.memberId), accountIds, now],
      );
      if (rowCount !== links.length) throw new BulkLinkRace();
      const google = links.filter((l) => l.google);
      if (google.length) {
        await tx.query(
          `INSERT INTO account_identities (provider, subject, account_id, email, created_at)
           SELECT 'google', g.subject, g.account_id, g.email, $4 FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS g (subject, account_id, email, n)
           ORDER BY g.n
           ON CONFLICT DO NOTHING`,
          [google.map((l) => l.google!.sub), google.map((l) => l.accountId), google.map((l) => l.google!.email), now],
        );
      }
      await tx.query(
        `INSERT INTO trello_link_events (member_id, account_id, created_at, next_attempt_at)
         SELECT e.member_id, e.account_id, $3, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e (member_id, account_id, n) ORDER BY e.n`,
        [col((l) => l.memberId), accountIds, now],
      );
      await tx.query(
        `INSERT INTO security_events (occurred_at, type, account_id, detail)
         SELECT $3, 'trello.linked', e.account_id, e.detail FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS e (account_id, detail, n) ORDER BY e.n`,
        [accountIds, col((l) => JSON.stringify(l.detail)), now],
      );
      await tx.query(
        `INSERT INTO password_reset_tokens (token_hash, account_id, created_at, expires_at)
         SELECT t.token_hash, t.account_id, $3, $4 FROM unnest($1::text[], $2::text[]) AS t (token_hash, account_id)`,
        [col((l) => l.tokenHash), accountIds, now, expiresAt],
      );
    },
  };
}

/** A member of the batch was linked by someone else between the plan and the write. */
export class BulkLinkRace extends Error {
  constructor() {
    super('a member of the batch was linked meanwhile');
    this.name = 'BulkLinkRace';
  }
}

export type TrelloBulkLinkQueries = ReturnType<typeof createTrelloBulkLinkQueries>;
