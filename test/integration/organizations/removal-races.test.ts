import { expect } from 'chai';
import { resetDatabase, serverUrl, testDatabase } from '../../helpers/db.ts';
import { createAccountQueries } from '../../../src/persistence/queries/accounts.ts';
import type { Database } from '../../../src/persistence/db.ts';

/**
 * An account created on a domain while an admin removes that domain, or deletes its organization:
 * the creation waits for the removal and then goes on as on any domain nobody holds — the
 * account is created, unmanaged — rather than failing on a row that went away meanwhile, and
 * neither side deadlocks with the other (the claim takes the organization's row first, as the
 * removal does).
 * Concurrent transactions need two connections: the PostgreSQL server (PGlite has one, on which
 * transactions never overlap).
 */
describe('account creation racing a domain’s removal', function () {
  this.timeout(30_000);
  let db: Database;

  before(async function () {
    if (!serverUrl) this.skip();
    await resetDatabase();
    db = await testDatabase();
  });

  async function heldDomain(domain: string) {
    const owner = await createAccountQueries(db).insertWith(db, { id: `acc_admin_${domain.replace(/\W/g, '')}`, email: `admin@${domain}.test`, emailVerified: true, name: null, passwordHash: null });
    const org = `org_${domain.replace(/\W/g, '')}`;
    await db.query('INSERT INTO organizations (id, name, created_at, created_by) VALUES ($1, $2, now(), $3)', [org, 'Racer', owner!.id]);
    await db.query(`INSERT INTO organization_domains (id, organization_id, domain, verification_token, state, method, added_at, added_by, verified_at)
      VALUES ($1, $2, $3, 'token', 'verified', 'dns', now(), $4, now())`, [`dom_${org}`, org, domain, owner!.id]);
    return { org, domainId: `dom_${org}` };
  }

  for (const removal of ['domain', 'organization'] as const) {
    it(`creates the account unmanaged when the ${removal} is removed while the creation runs`, async () => {
      const domain = `race-${removal}.example`;
      const { org, domainId } = await heldDomain(domain);
      const accounts = createAccountQueries(db);
      let release!: () => void;
      const held = new Promise<void>((resolve) => { release = resolve; });
      let locked!: () => void;
      const started = new Promise<void>((resolve) => { locked = resolve; });
      // The order a removal takes its locks (src/organizations/organizations.ts): the
      // organization's row, then — while the creation is under way — the domain's.
      const removing = db.transaction(async (tx) => {
        await tx.query('SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [org]);
        locked();
        await held;
        if (removal === 'domain') await tx.query('DELETE FROM organization_domains WHERE id = $1', [domainId]);
        else {
          await tx.query('UPDATE organizations SET deleted_at = now() WHERE id = $1', [org]);
          await tx.query('DELETE FROM organization_domains WHERE organization_id = $1', [org]);
        }
      });
      await started;
      const creating = db.transaction((tx) => accounts.insertWith(tx, { id: `acc_race_${removal}`, email: `new@${domain}`, emailVerified: true, name: null, passwordHash: null }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      release();
      await removing;
      const created = await creating;
      expect(created.email).to.equal(`new@${domain}`);
      const { rows } = await db.query('SELECT * FROM account_managers WHERE account_id = $1', [created.id]);
      expect(rows).to.deep.equal([]);
    });
  }
});
