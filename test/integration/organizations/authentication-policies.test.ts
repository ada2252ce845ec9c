import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { resetDatabase } from '../../helpers/db.ts';
import { createAccount } from '../../helpers/factories.ts';
import { csrfFrom } from '../../helpers/login-driver.ts';
import { postForm, signInToAccount, type Agent } from '../../helpers/account-pages.ts';

/**
 * The console's authentication policies pages (docs/flows/organizations.md "Authentication
 * policies", decision 0038) over real HTTP, and what keeps the assignments true: settings checked
 * with a message per setting, the default's rules, assignment from the managed-accounts list and
 * from an account's page, the audit trail, and assignments ending with management.
 */
describe('organizations: authentication policies console', () => {
  let server: TestServer;
  let n = 0;
  const unique = () => `${Date.now().toString(36)}${(n += 1)}`;

  beforeEach(async () => {
    await resetDatabase();
    server = await startTestServer();
  });
  afterEach(() => server.close());

  /** An admin signed in to the console, their organization holding a verified domain, and two accounts on it. */
  async function setup() {
    const { db, organizations } = server.registry;
    const admin = await createAccount(server.registry, { email: `admin-${unique()}@admins.example` });
    const created = await organizations.service.create(admin.id, 'Acme');
    if (!created.ok) throw new Error(created.problem);
    const org = created.organization;
    const domain = `acme-${unique()}.example`;
    await db.query(
      `INSERT INTO organization_domains (id, organization_id, domain, verification_token, state, method, added_at, added_by, verified_at)
       VALUES ($1, $2, $3, 'token', 'verified', 'dns', now(), $4, now())`,
      [`dom_${unique()}`, org.id, domain, admin.id],
    );
    const ann = await createAccount(server.registry, { email: `ann@${domain}` });
    const bo = await createAccount(server.registry, { email: `bo@${domain}` });
    const { agent } = await signInToAccount(server.url, admin.email);
    return { admin, org, base: `/admin/organizations/${org.id}`, ann, bo, agent, domain };
  }

  const events = async (orgId: string) => (await server.registry.db.query<{ action: string; target_type: string; target_id: string; detail: Record<string, unknown> | null }>(
    'SELECT action, target_type, target_id, detail FROM organization_events WHERE organization_id = $1 ORDER BY id', [orgId])).rows;
  const members = async () => (await server.registry.db.query<{ account_id: string; policy_id: string }>('SELECT account_id, policy_id FROM authentication_policy_members ORDER BY account_id')).rows;

  async function create(agent: Agent, base: string, fields: Record<string, string>) {
    return postForm(agent, `${base}/policies/new`, `${base}/policies`, { login_method: 'password', ...fields });
  }

  it('lists no policy at first and explains what moving to single sign-on does to people', async () => {
    const { agent, base } = await setup();
    const page = await agent.get(`${base}/policies`);
    expect(page.status).to.equal(200);
    expect(page.text).to.contain('id="no-policies"');
    expect(page.text).to.contain('aria-current="page">Policies');
    const transition = /<ul class="steps" id="sso-transition">([\s\S]*?)<\/ul>/.exec(page.text)![1]!;
    expect(transition).to.contain('They keep their account');
    expect(transition).to.contain('Their old password stops working');
    expect(transition).to.contain('sent straight to your company’s sign-in page');
  });

  it('checks each setting and says which is wrong, without creating anything', async () => {
    const { agent, base, org, admin } = await setup();
    const cases: [Record<string, string>, string, string][] = [
      [{ name: '' }, 'Check the name', 'policy-name'],
      [{ name: 'Staff', password_min_length: '5' }, 'Check the minimum password length', 'policy-min-length'],
      [{ name: 'Staff', password_min_length: 'ten' }, 'Check the minimum password length', 'policy-min-length'],
      [{ name: 'Staff', password_max_age_days: '0' }, 'Check the password expiry', 'policy-max-age'],
      [{ name: 'Staff', idle_timeout_minutes: '2' }, 'Check the idle timeout', 'policy-idle'],
      [{ name: 'Staff', max_session_hours: '9000' }, 'Check the maximum session length', 'policy-max-session'],
      [{ name: 'Staff', login_method: 'sso' }, 'Choose the identity provider', 'policy-connector'],
      [{ name: 'Staff', login_method: 'sso', connector: 'con_elsewhere' }, 'No such identity provider', 'policy-connector'],
      [{ name: 'Staff', login_method: 'carrier-pigeon' }, 'Choose how people sign in', 'method-password'],
    ];
    for (const [fields, title, field] of cases) {
      const res = await create(agent, base, fields);
      expect(res.status, JSON.stringify(fields)).to.equal(400);
      expect(res.text).to.contain(title);
      expect(res.text, field).to.match(new RegExp(`id="${field}"[^>]*autofocus aria-invalid="true"`));
    }
    // A connector that never completed a login is not offered to people yet.
    await server.registry.db.query(
      `INSERT INTO connectors (id, organization_id, kind, name, config, enabled, created_at, created_by, updated_at)
       VALUES ('con_untested', $1, 'oidc', 'Acme Okta', '{}'::jsonb, true, now(), $2, now())`, [org.id, admin.id]);
    const untested = await create(agent, base, { name: 'Staff', login_method: 'sso', connector: 'con_untested' });
    expect(untested.status).to.equal(400);
    expect(untested.text).to.contain('Test the identity provider first');
    expect(untested.text).to.contain('Acme Okta (OpenID Connect)');
    expect((await server.registry.db.query('SELECT 1 FROM authentication_policies')).rows).to.have.length(0);
  });

  it('creates policies (the first is the default), edits, assigns accounts one or many, moves the default, deletes, all in the audit trail', async () => {
    const { agent, base, org, ann, bo } = await setup();
    const first = await create(agent, base, { name: 'Staff', password_min_length: '14', idle_timeout_minutes: '30' });
    expect(first.status).to.equal(303);
    const staffPath = first.headers.location!;
    const staffId = staffPath.split('/').pop()!;
    const staffPage = await agent.get(staffPath);
    expect(staffPage.text).to.contain('As your organization’s first policy it is the default');
    expect(staffPage.text).to.match(/id="policy-followers">2</);
    expect((await create(agent, base, { name: 'staff' })).status, 'names are unique, whatever the case').to.equal(409);
    const contractors = await create(agent, base, { name: 'Contractors', two_step_required: 'on', password_max_age_days: '90', max_session_hours: '8' });
    expect(contractors.status).to.equal(303);
    const contractorsId = contractors.headers.location!.split('/').pop()!;
    const duplicate = await create(agent, base, { name: 'Contractors' });
    expect(duplicate.status).to.equal(409);
    expect(duplicate.text).to.contain('That name is taken');

    const list = await agent.get(`${base}/policies`);
    expect(list.text).to.contain('Passwords of at least 14 characters');
    expect(list.text).to.contain('Signed out after 30 minutes idle');
    expect(list.text).to.contain('Two-step verification required');
    expect(list.text).to.contain('Passwords expire after 90 days');
    expect(list.text).to.contain('Signed in for at most 8 hours');

    // Edit: the form shows the stored values in the units people use.
    const edit = await agent.get(`${base}/policies/${contractorsId}`);
    expect(edit.text).to.match(/id="policy-max-session"[^>]*value="8"/);
    expect(edit.text).to.match(/id="policy-two-step"[^>]*checked/);
    const saved = await postForm(agent, `${base}/policies/${contractorsId}`, `${base}/policies/${contractorsId}`, { name: 'Contractors', login_method: 'password', two_step_required: 'on', password_max_age_days: '60', max_session_hours: '8' });
    expect(saved.status).to.equal(303);

    // Bulk assignment from the managed-accounts list: the list's form sends the selection to the policy page.
    const accounts = await agent.get(`${base}/accounts`);
    expect(accounts.text).to.contain(`formaction="${base}/policies/assign"`);
    const choose = await agent.get(`${base}/policies/assign?id=${ann.id}&id=${bo.id}&id=acc_not_ours`);
    expect(choose.status).to.equal(200);
    expect(choose.text).to.contain(ann.email);
    expect(choose.text).to.contain('1 selected account is not managed by this organization');
    const ids = /name="ids" value="([^"]+)"/.exec(choose.text)![1]!;
    expect(ids.split(' ').sort()).to.deep.equal([ann.id, bo.id].sort());
    const assigned = await agent.post(`${base}/policies/assign`).type('form').send({ _csrf: csrfFrom(choose.text), ids, policy: contractorsId });
    expect(assigned.status).to.equal(303);
    expect((await members()).map((m) => m.policy_id)).to.deep.equal([contractorsId, contractorsId]);
    expect((await agent.get(assigned.headers.location!)).text).to.contain('2 accounts now follow Contractors');

    // One account, from its page: what it follows now, and back to the default.
    const accountPage = await agent.get(`${base}/accounts/${ann.id}`);
    expect(accountPage.text).to.contain(`${base}/policies/assign?id=${ann.id}`);
    const one = await agent.get(`${base}/policies/assign?id=${ann.id}`);
    expect(one.text).to.match(/id="current-policy">follows <strong>Contractors<\/strong>/);
    const back = await agent.post(`${base}/policies/assign`).type('form').send({ _csrf: csrfFrom(one.text), ids: ann.id, policy: 'default' });
    expect(back.status).to.equal(303);
    expect((await agent.get(back.headers.location!)).text).to.match(/follows <strong>Staff \(the default\)<\/strong>/);

    // The default can't be deleted while another policy exists; moving the default lets it.
    const confirm = await agent.get(`${base}/policies/${staffId}/delete`);
    expect(confirm.text, 'the page says why, and offers no button').to.contain('This is the default policy');
    expect(confirm.text).not.to.contain(`action="${base}/policies/${staffId}/delete"`);
    const refused = await postForm(agent, `${base}/policies/${staffId}`, `${base}/policies/${staffId}/delete`);
    expect(refused.status).to.equal(409);
    expect(refused.text).to.contain('This is the default policy');
    expect((await postForm(agent, `${base}/policies`, `${base}/policies/${contractorsId}/default`)).status).to.equal(303);
    expect((await postForm(agent, `${base}/policies/${staffId}/delete`, `${base}/policies/${staffId}/delete`)).status).to.equal(303);
    // Deleting the policy bo was assigned to would send bo to the default; here bo stays on Contractors, now the default.
    expect((await server.registry.db.query('SELECT id, is_default FROM authentication_policies')).rows).to.deep.equal([{ id: contractorsId, is_default: true }]);

    const trail = (await events(org.id)).filter((e) => e.action.startsWith('policy.') || e.action === 'account.policy_assigned');
    expect(trail.map((e) => e.action)).to.deep.equal([
      'policy.created', 'policy.created', 'policy.updated', 'account.policy_assigned', 'account.policy_assigned', 'account.policy_assigned', 'policy.default_set', 'policy.deleted',
    ]);
    expect(trail[2]!.detail).to.deep.equal({ password_max_age_days: { from: 90, to: 60 } });
    expect(trail[0]!.target_type).to.equal('policy');
    const audit = await agent.get(`${base}/audit`);
    expect(audit.text).to.contain('changed the authentication policy of');
    expect(audit.text).to.contain('made the default policy');
  });

  it('answers 404 to anyone but the organization’s admins, refuses forms without their CSRF token, and asks for a recent login', async () => {
    const { agent, base } = await setup();
    const created = await create(agent, base, { name: 'Staff' });
    const policyPath = created.headers.location!;
    const stranger = await createAccount(server.registry, { email: `someone-${unique()}@example.com` });
    const { agent: theirs } = await signInToAccount(server.url, stranger.email);
    for (const path of [`${base}/policies`, policyPath, `${policyPath}/sign-out`, `${base}/policies/assign`]) {
      expect((await theirs.get(path)).status, path).to.equal(404);
    }
    const csrf = csrfFrom((await theirs.get('/account/profile')).text);
    expect((await theirs.post(`${policyPath}/sign-out`).type('form').send({ _csrf: csrf })).status).to.equal(404);
    expect((await agent.post(`${policyPath}/sign-out`).type('form').send({ name: 'x' })).status, 'no CSRF token').to.equal(403);
    expect((await agent.post(`${base}/policies`).type('form').send({ _csrf: 'forged', name: 'x' })).status).to.equal(403);
    expect((await server.registry.db.query('SELECT reauthenticate_after FROM authentication_policies')).rows[0]).to.deep.equal({ reauthenticate_after: null });
  });

  it('never assigns another admin of the organization: one admin cannot put another under a policy (an SSO-only one locks them out of their password)', async () => {
    const { admin, org, ann, bo } = await setup();
    const { policies } = server.registry.organizations;
    await policies.create(admin.id, org.id, { name: 'Staff' });
    const other = await policies.create(admin.id, org.id, { name: 'Contractors' });
    if (!other.ok) throw new Error(other.problem);
    // Ann, a managed account on the domain, is made an admin too.
    await server.registry.db.query("INSERT INTO organization_members (organization_id, account_id, role, added_at) VALUES ($1, $2, 'admin', now())", [org.id, ann.id]);
    expect(await policies.assign(admin.id, org.id, [ann.id, bo.id], other.policy.id)).to.deep.include({ ok: true, assigned: 1, skipped: 1 });
    expect((await members()).map((m) => m.account_id)).to.deep.equal([bo.id]);
    // Ann may put herself under it.
    expect(await policies.assign(ann.id, org.id, [ann.id], other.policy.id)).to.deep.include({ ok: true, assigned: 1, skipped: 0 });
  });

  it('an account released by its organization, or erased, keeps no assignment', async () => {
    const { admin, org, ann, bo } = await setup();
    const { policies } = server.registry.organizations;
    await policies.create(admin.id, org.id, { name: 'Staff' });
    const other = await policies.create(admin.id, org.id, { name: 'Contractors' });
    if (!other.ok) throw new Error(other.problem);
    expect((await policies.assign(admin.id, org.id, [ann.id, bo.id], other.policy.id)).ok).to.equal(true);
    expect(await members()).to.have.length(2);

    // Released: the organization no longer manages ann.
    await server.registry.db.query("DELETE FROM account_managers WHERE account_id = $1 AND kind = 'organization'", [ann.id]);
    expect((await members()).map((m) => m.account_id)).to.deep.equal([bo.id]);

    // Erased: an admin's deletion, then the sweeper past the grace period.
    expect((await server.registry.organizations.managedAccounts.delete(admin.id, org.id, bo.id)).ok).to.equal(true);
    await server.registry.db.query("UPDATE accounts SET delete_after = now() - interval '1 minute' WHERE id = $1", [bo.id]);
    await server.registry.accountClosure.sweep();
    expect((await server.registry.accounts.findById(bo.id))?.erased_at).to.be.instanceOf(Date);
    expect(await members()).to.deep.equal([]);
  });
});
