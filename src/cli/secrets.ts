import type { Registry } from '../registry.ts';
import { SealedSecretError } from '../shared/crypto.ts';
import { createSealedValueQueries, type SealedColumn } from '../persistence/queries/sealed-values.ts';
import { sealContext as clientSecretContext } from '../oidc/clients.ts';
import { sealContext as privateKeyContext } from '../oidc/signing-keys.ts';
import { secretContext as totpSecretContext } from '../identity/two-step.ts';
import { bodyContext as mailBodyContext } from '../mail/outbox.ts';
import { sealContext as connectorSecretsContext } from '../federation/connectors.ts';

/**
 * Every column sealed with SECRET_KEY, with the associated data each value is bound to
 * (src/shared/crypto.ts). A new sealed column is added here, or `secrets reseal` misses it and
 * the former key can never be retired (test/integration/faults/secret-key-rotation.test.ts
 * checks the list against the schema).
 */
export const SEALED_COLUMNS: { column: SealedColumn; context: (key: string) => string }[] = [
  { column: { table: 'clients', key: 'client_id', column: 'secret_sealed' }, context: clientSecretContext },
  { column: { table: 'signing_keys', key: 'kid', column: 'private_jwk_sealed' }, context: privateKeyContext },
  { column: { table: 'instance_secrets', key: 'name', column: 'sealed_value' }, context: (name) => name },
  { column: { table: 'totp_factors', key: 'account_id', column: 'secret_sealed' }, context: totpSecretContext },
  { column: { table: 'mail_outbox_bodies', key: 'mail_id', column: 'body_sealed' }, context: mailBodyContext },
  { column: { table: 'connectors', key: 'id', column: 'sealed_secrets' }, context: connectorSecretsContext },
];

const BATCH = 500;

export interface ResealReport {
  /** Per column: values re-sealed, and values that open with no configured key. */
  columns: { name: string; resealed: number; unreadable: string[] }[];
  keyId: string;
}

/**
 * Re-seals every sealed value that is not sealed with the current SECRET_KEY yet, in batches of
 * BATCH rows by primary key; each value is replaced on its own, only if unchanged meanwhile.
 * Idempotent and resumable: values already sealed with the current key are never read again, so
 * a run that stopped half-way is simply run again.
 */
export async function resealSecrets(registry: Pick<Registry, 'db' | 'box'>): Promise<ResealReport> {
  const { box } = registry;
  const queries = createSealedValueQueries(registry.db);
  const report: ResealReport = { columns: [], keyId: box.keyId };
  for (const { column, context } of SEALED_COLUMNS) {
    const entry = { name: `${column.table}.${column.column}`, resealed: 0, unreadable: [] as string[] };
    let after: string | undefined;
    for (;;) {
      const page = await queries.pageNotSealedWith(column, box.currentPrefix, after, BATCH);
      for (const row of page) {
        let plaintext: string;
        try {
          plaintext = box.open(row.sealed, context(row.key));
        } catch (err) {
          if (!(err instanceof SealedSecretError)) throw err;
          entry.unreadable.push(`${row.key} (${err.message})`);
          continue;
        }
        if (await queries.replace(column, row.key, row.sealed, box.seal(plaintext, context(row.key)))) entry.resealed += 1;
      }
      if (page.length < BATCH) break;
      after = page.at(-1)!.key;
    }
    report.columns.push(entry);
  }
  return report;
}
