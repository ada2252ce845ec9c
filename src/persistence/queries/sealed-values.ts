import type { Queryable } from '../db.ts';

/** A column holding values sealed with SECRET_KEY, and the primary key of its table. */
export interface SealedColumn {
  table: string;
  key: string;
  column: string;
}

const IDENTIFIER = /^[a-z_]+$/;

function checked(c: SealedColumn): SealedColumn {
  // Identifiers come from a fixed list in the code, never from input; checked all the same.
  if (![c.table, c.key, c.column].every((part) => IDENTIFIER.test(part))) throw new Error(`not a sealed column: ${c.table}.${c.column}`);
  return c;
}

/** Reading and replacing sealed values column by column, for `secrets reseal`. */
export function createSealedValueQueries(db: Queryable) {
  return {
    /** Up to `limit` values not starting with `prefix` (not sealed with the current key), after `after` in key order. */
    async pageNotSealedWith(column: SealedColumn, prefix: string, after: string | undefined, limit: number): Promise<{ key: string; sealed: string }[]> {
      const { table, key, column: col } = checked(column);
      const { rows } = await db.query<{ key: string; sealed: string }>(
        `SELECT ${key} AS key, ${col} AS sealed FROM ${table}
         WHERE ${col} IS NOT NULL AND left(${col}, length($1)) <> $1 AND ($2::text IS NULL OR ${key} > $2)
         ORDER BY ${key} LIMIT $3`,
        [prefix, after ?? null, limit],
      );
      return rows;
    },

    /** Replaces one value if it is still `from` (a concurrent writer, sealing with the current key, wins). */
    async replace(column: SealedColumn, keyValue: string, from: string, to: string): Promise<boolean> {
      const { table, key, column: col } = checked(column);
      const { rowCount } = await db.query(`UPDATE ${table} SET ${col} = $3 WHERE ${key} = $1 AND ${col} = $2`, [keyValue, from, to]);
      return rowCount === 1;
    },
  };
}
