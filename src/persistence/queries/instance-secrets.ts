import type { Queryable } from '../db.ts';

export function createInstanceSecretQueries(db: Queryable) {
  return {
    async find(name: string): Promise<string | undefined> {
      const { rows } = await db.query<{ sealed_value: string }>('SELECT sealed_value FROM instance_secrets WHERE name = $1', [name]);
      return rows[0]?.sealed_value;
    },

    /** Stores the value unless one exists; returns whichever value won (first writer wins across instances). */
    async insertOrGet(name: string, sealedValue: string): Promise<string> {
      await db.query('INSERT INTO instance_secrets (name, sealed_value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, sealedValue]);
      const { rows } = await db.query<{ sealed_value: string }>('SELECT sealed_value FROM instance_secrets WHERE name = $1', [name]);
      return rows[0]!.sealed_value;
    },
  };
}

export type InstanceSecretQueries = ReturnType<typeof createInstanceSecretQueries>;
