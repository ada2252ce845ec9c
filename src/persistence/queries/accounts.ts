import type { Queryable } from '../db.ts';

export type AccountStatus = 'active' | 'deactivated' | 'closed';

export interface AccountRow {
  id: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  nickname: string | null;
  picture: string | null;
  locale: string | null;
  zoneinfo: string | null;
  status: AccountStatus;
  password_hash: string | null;
  password_changed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewAccount {
  id: string;
  email: string;
  emailVerified: boolean;
  name?: string | null;
  nickname?: string | null;
  locale?: string | null;
  zoneinfo?: string | null;
  passwordHash?: string | null;
}

const COLUMNS = 'id, email, email_verified, name, nickname, picture, locale, zoneinfo, status, password_hash, password_changed_at, created_at, updated_at';

export function createAccountQueries(db: Queryable) {
  return {
    async findById(id: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE id = $1`, [id]);
      return rows[0];
    },

    /** `email` must already be normalised; the unique index is on lower(email). */
    async findByEmail(email: string): Promise<AccountRow | undefined> {
      const { rows } = await db.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE lower(email) = lower($1)`, [email]);
      return rows[0];
    },

    insert(account: NewAccount): Promise<AccountRow> {
      return this.insertWith(db, account);
    },

    /** Inserts inside the caller's transaction. */
    async insertWith(tx: Queryable, account: NewAccount): Promise<AccountRow> {
      const { rows } = await tx.query<AccountRow>(
        `INSERT INTO accounts (id, email, email_verified, name, nickname, locale, zoneinfo, password_hash, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
         RETURNING ${COLUMNS}`,
        [account.id, account.email, account.emailVerified, account.name ?? null, account.nickname ?? null,
          account.locale ?? null, account.zoneinfo ?? null, account.passwordHash ?? null],
      );
      return rows[0]!;
    },

    /** Replaces the stored hash of the same password with one at current parameters. */
    async replacePasswordHash(id: string, previousHash: string, nextHash: string): Promise<void> {
      // Conditional on the old hash so a concurrent password change is never overwritten.
      await db.query('UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, previousHash, nextHash]);
    },

    async setPassword(tx: Queryable, id: string, hash: string, now: Date): Promise<void> {
      await tx.query('UPDATE accounts SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1', [id, hash, now]);
    },

    async count(): Promise<number> {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
      return rows[0]?.n ?? 0;
    },
  };
}

export type AccountQueries = ReturnType<typeof createAccountQueries>;
