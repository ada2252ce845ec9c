import type { Queryable } from '../db.ts';

export type ClientKind = 'web' | 'native' | 'service';

export interface ClientRow {
  client_id: string;
  kind: ClientKind;
  name: string;
  secret_sealed: string | null;
  first_party: boolean;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'client_id, kind, name, secret_sealed, first_party, metadata, created_at, updated_at';

export function createClientQueries(db: Queryable) {
  return {
    async find(clientId: string): Promise<ClientRow | undefined> {
      const { rows } = await db.query<ClientRow>(`SELECT ${COLUMNS} FROM clients WHERE client_id = $1`, [clientId]);
      return rows[0];
    },

    async list(): Promise<ClientRow[]> {
      const { rows } = await db.query<ClientRow>(`SELECT ${COLUMNS} FROM clients ORDER BY client_id`);
      return rows;
    },

    /** Returns false when the client id is taken. */
    async insert(row: Omit<ClientRow, 'created_at' | 'updated_at'>): Promise<boolean> {
      const { rowCount } = await db.query(
        `INSERT INTO clients (client_id, kind, name, secret_sealed, first_party, metadata)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (client_id) DO NOTHING`,
        [row.client_id, row.kind, row.name, row.secret_sealed, row.first_party, JSON.stringify(row.metadata)],
      );
      return rowCount === 1;
    },

    async update(row: Omit<ClientRow, 'created_at' | 'updated_at' | 'kind'>): Promise<boolean> {
      const { rowCount } = await db.query(
        `UPDATE clients SET name = $2, secret_sealed = $3, first_party = $4, metadata = $5::jsonb, updated_at = now()
         WHERE client_id = $1`,
        [row.client_id, row.name, row.secret_sealed, row.first_party, JSON.stringify(row.metadata)],
      );
      return rowCount === 1;
    },

    async delete(clientId: string): Promise<boolean> {
      const { rowCount } = await db.query('DELETE FROM clients WHERE client_id = $1', [clientId]);
      return rowCount === 1;
    },
  };
}

export type ClientQueries = ReturnType<typeof createClientQueries>;
