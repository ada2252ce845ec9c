import type { Queryable } from '../db.ts';

export interface AvatarImage {
  image: Buffer;
  content_type: string;
  version: string;
}

export function createAvatarQueries(db: Queryable) {
  return {
    /** Replaces every size of an account's picture and points its `picture` claim at the new one. */
    async replace(tx: Queryable, accountId: string, version: string, images: Array<{ size: number; image: Buffer }>, pictureUrl: string): Promise<void> {
      await tx.query('DELETE FROM avatars WHERE account_id = $1', [accountId]);
      for (const { size, image } of images) {
        await tx.query('INSERT INTO avatars (account_id, size, image, content_type, version) VALUES ($1, $2, $3, $4, $5)', [accountId, size, image, 'image/webp', version]);
      }
      await tx.query('UPDATE accounts SET picture = $2, updated_at = now() WHERE id = $1', [accountId, pictureUrl]);
    },

    async remove(tx: Queryable, accountId: string): Promise<void> {
      await tx.query('DELETE FROM avatars WHERE account_id = $1', [accountId]);
      await tx.query('UPDATE accounts SET picture = NULL, updated_at = now() WHERE id = $1', [accountId]);
    },

    async find(accountId: string, size: number): Promise<AvatarImage | undefined> {
      const { rows } = await db.query<{ image: Buffer | Uint8Array; content_type: string; version: string }>(
        'SELECT image, content_type, version FROM avatars WHERE account_id = $1 AND size = $2', [accountId, size]);
      const row = rows[0];
      // pg returns a Buffer, PGlite a Uint8Array: one type for the callers.
      return row ? { image: Buffer.from(row.image), content_type: row.content_type, version: row.version } : undefined;
    },
  };
}

export type AvatarQueries = ReturnType<typeof createAvatarQueries>;
