import type { Registry } from '../../src/registry.ts';
import { newId } from '../../src/shared/ids.ts';
import { createAccount } from './factories.ts';

/**
 * Company SSO fixtures (issue 13): an organization holding a verified domain, an OIDC connector
 * registered through the connectors service (as the console does) and linked to the domain, and
 * — written straight to the table, since the policy console is another branch's — an
 * authentication policy requiring it.
 */
export async function ssoOrganization(registry: Registry, options: { domain: string; upstream?: { issuer: string; clientId: string; clientSecret: string }; issuer?: string; policy?: 'default' | 'none'; scopes?: string }) {
  const admin = await createAccount(registry, { email: `admin-${newId('x').slice(2, 10).toLowerCase()}@admins.example` });
  const created = await registry.organizations.service.create(admin.id, `Org ${options.domain}`);
  if (!created.ok) throw new Error(created.problem);
  const org = created.organization;
  const domainId = await verifiedDomain(registry, admin.id, org.id, options.domain);
  const connector = await registry.sso.connectors.create(admin.id, org.id, 'oidc', {
    name: 'Company sign-in',
    config: { issuer: options.upstream?.issuer ?? options.issuer ?? 'http://127.0.0.1:1', clientId: options.upstream?.clientId ?? 'lanyard', scopes: options.scopes ?? 'openid email profile' },
    clientSecret: options.upstream?.clientSecret ?? 'a-client-secret',
  });
  if (!connector.ok) throw new Error(`${connector.problem} ${connector.detail ?? ''}`);
  const linked = await registry.sso.connectors.setDomains(admin.id, org.id, connector.connector.id, [domainId]);
  if (!linked.ok) throw new Error(linked.problem);
  const policyId = options.policy === 'none' ? undefined : await ssoPolicy(registry, org.id, connector.connector.id, { isDefault: true });
  return { admin, org, domainId, connectorId: connector.connector.id, policyId };
}

/** A domain the organization proved (the state the DNS check leaves; the check itself is issue 12's). */
export async function verifiedDomain(registry: Registry, adminId: string, orgId: string, domain: string): Promise<string> {
  const added = await registry.organizations.service.addDomain(adminId, orgId, domain);
  if (!added.ok) throw new Error(added.problem);
  await registry.db.query("UPDATE organization_domains SET state = 'verified', method = 'dns', verified_at = now(), last_checked_at = now() WHERE id = $1", [added.domain.id]);
  return added.domain.id;
}

/** An authentication policy row: SSO through `connectorId` (or password when null). */
export async function ssoPolicy(registry: Registry, organizationId: string, connectorId: string | null, options: { isDefault?: boolean; members?: string[]; twoStepRequired?: boolean } = {}): Promise<string> {
  const id = newId('pol');
  await registry.db.query(
    `INSERT INTO authentication_policies (id, organization_id, name, is_default, login_method, connector_id, two_step_required, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())`,
    [id, organizationId, `Policy ${id.slice(4, 10)}`, options.isDefault ?? false, connectorId ? 'sso' : 'password', connectorId, options.twoStepRequired ?? false],
  );
  for (const accountId of options.members ?? []) {
    await registry.db.query('INSERT INTO authentication_policy_members (account_id, policy_id, added_at) VALUES ($1, $2, now())', [accountId, id]);
  }
  return id;
}
