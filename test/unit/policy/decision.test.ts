import { expect } from 'chai';
import {
  ACR_ONE_FACTOR, ACR_TWO_FACTORS, decide, passwordMinLength, provenanceFrom, REAUTHENTICATION_MAX_AGE_SECONDS, requestedLevel,
  type AccountSubject, type Decision, type DecisionInput, type Method, type Stage,
} from '../../../src/policy/policy.ts';

const NOW = 1_800_000_000;

const account = (overrides: Partial<AccountSubject> = {}): AccountSubject => ({
  kind: 'account', id: 'acc_1', status: 'active', reopenable: false, hasPassword: true, twoStepEnabled: false,
  twoStepRequired: false, managers: [], trelloLinked: false, ...overrides,
});
const oneFactor = { amr: ['pwd'], acr: ACR_ONE_FACTOR, authTime: NOW - 60 } as const;
const twoFactors = { amr: ['pwd', 'otp', 'mfa'], acr: ACR_TWO_FACTORS, authTime: NOW - 60 } as const;
const sso = { kind: 'organization' as const, id: 'org_1', name: 'Acme', rules: { connector: 'acme-oidc' } };
const ssoWith2sv = { kind: 'organization' as const, id: 'org_1', name: 'Acme', rules: { connector: 'acme-oidc', twoStepRequired: true } };
const requires2sv = { kind: 'organization' as const, id: 'org_1', name: 'Acme', rules: { twoStepRequired: true } };
const enterprise = { kind: 'trello_enterprise' as const, id: 'ent_1', name: 'Acme Trello' };
const orgManager = { kind: 'organization' as const, id: 'org_2', name: 'Acme' };

const run = (input: Omit<DecisionInput, 'now'>): Decision => decide({ ...input, now: NOW });

describe('policy decision point (decision table)', () => {
  // [description, input, expected]
  const table: [string, Omit<DecisionInput, 'now'>, Decision][] = [
    // The identifier step answers alike for an unknown address and a password account.
    ['identify: unknown address', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'identify' }, { outcome: 'allow' }],
    ['identify: password account', { subject: account(), stage: 'identify' }, { outcome: 'allow' }],
    ['identify: deactivated account looks like any other', { subject: account({ status: 'deactivated' }), stage: 'identify' }, { outcome: 'allow' }],
    ['identify: SSO required', { subject: account({ managers: [sso] }), stage: 'identify' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],

    // Home-realm discovery (decision 0033): an address without an account on a domain whose default policy requires SSO.
    ['identify: unknown address on an SSO domain', { subject: { kind: 'address', email: 'x@acme.test', managers: [sso] }, stage: 'identify' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['identify: unknown address on a password domain', { subject: { kind: 'address', email: 'x@acme.test', managers: [orgManager] }, stage: 'identify' }, { outcome: 'allow' }],
    ['sign-up by email on an SSO domain', { subject: { kind: 'address', email: 'x@acme.test', managers: [sso] }, stage: 'sign_up', method: 'email' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['just-in-time account through the required connector', { subject: { kind: 'address', email: 'x@acme.test', managers: [sso] }, stage: 'sign_up', method: 'connector:acme-oidc' }, { outcome: 'allow' }],
    ['reset request for an address on an SSO domain', { subject: { kind: 'address', email: 'x@acme.test', managers: [sso] }, stage: 'reset_request', method: 'email' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['Trello password of a member on an SSO domain', { subject: { kind: 'address', email: 'x@acme.test', managers: [sso] }, stage: 'first_factor', method: 'trello_password' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['SSO login through the required connector', { subject: account({ managers: [sso] }), stage: 'first_factor', method: 'connector:acme-oidc' }, { outcome: 'allow' }],
    ['SSO login through another connector', { subject: account({ managers: [sso] }), stage: 'first_factor', method: 'connector:other' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ["SSO login: the company's two-step requirement is its identity provider's", { subject: account({ managers: [ssoWith2sv] }), stage: 'first_factor', method: 'connector:acme-oidc' }, { outcome: 'allow' }],
    ['SSO login: two-step set on by the owner is not asked again', { subject: account({ managers: [sso], twoStepEnabled: true }), stage: 'first_factor', method: 'connector:acme-oidc' }, { outcome: 'allow' }],
    ["SSO login: the operator's two-step requirement still holds", { subject: account({ managers: [sso], twoStepRequired: true }), stage: 'first_factor', method: 'connector:acme-oidc' }, { outcome: 'enrol', factor: 'totp' }],
    ['refresh of an SSO login under a two-step policy', { subject: account({ managers: [ssoWith2sv] }), stage: 'refresh', provenance: { ...oneFactor, amr: ['fed'], connector: 'acme-oidc' } }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['refresh after "sign everyone out"', { subject: account({ managers: [{ ...orgManager, rules: { reauthenticateAfter: NOW - 30 } }] }), stage: 'refresh', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['refresh of a login made after "sign everyone out"', { subject: account({ managers: [{ ...orgManager, rules: { reauthenticateAfter: NOW - 120 } }] }), stage: 'refresh', provenance: oneFactor }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['session older than the maximum lifetime', { subject: account({ managers: [{ ...orgManager, rules: { maxSessionSeconds: 30 } }] }), stage: 'session', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['refresh idle longer than the timeout', { subject: account({ managers: [{ ...orgManager, rules: { idleTimeoutSeconds: 300 } }] }), stage: 'refresh', provenance: { ...oneFactor, authTime: NOW - 3600, lastActive: NOW - 301 } }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['refresh within the idle timeout', { subject: account({ managers: [{ ...orgManager, rules: { idleTimeoutSeconds: 300 } }] }), stage: 'refresh', provenance: { ...oneFactor, authTime: NOW - 3600, lastActive: NOW - 299 } }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],

    ['password, no two-step', { subject: account(), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['password, two-step on', { subject: account({ twoStepEnabled: true }), stage: 'first_factor', method: 'password' }, { outcome: 'second_factor', methods: ['totp', 'recovery_code'] }],
    ['password, two-step required by the operator', { subject: account({ twoStepRequired: true }), stage: 'first_factor', method: 'password' }, { outcome: 'enrol', factor: 'totp' }],
    ['password, two-step required by a manager', { subject: account({ managers: [requires2sv] }), stage: 'first_factor', method: 'password' }, { outcome: 'enrol', factor: 'totp' }],
    ['password, relying party asks for two factors', { subject: account(), stage: 'first_factor', method: 'password', wantedAcr: ACR_TWO_FACTORS }, { outcome: 'enrol', factor: 'totp' }],
    ['password, relying party asks for one factor', { subject: account({ twoStepEnabled: true }), stage: 'first_factor', method: 'password', wantedAcr: ACR_ONE_FACTOR }, { outcome: 'second_factor', methods: ['totp', 'recovery_code'] }],
    ['password, deactivated', { subject: account({ status: 'deactivated' }), stage: 'first_factor', method: 'password' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['password, closed within grace', { subject: account({ status: 'closed', reopenable: true }), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['password, closed past grace', { subject: account({ status: 'closed' }), stage: 'first_factor', method: 'password' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['password, SSO required', { subject: account({ managers: [sso] }), stage: 'first_factor', method: 'password' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['Trello-managed (no rules) changes nothing', { subject: account({ managers: [enterprise] }), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['Trello password, member not linked', { subject: account(), stage: 'first_factor', method: 'trello_password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['Trello password, member without an account here', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'first_factor', method: 'trello_password' }, { outcome: 'allow' }],
    ['password at an address without an account', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'first_factor', method: 'password' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['Trello password, member linked', { subject: account({ trelloLinked: true }), stage: 'first_factor', method: 'trello_password' }, { outcome: 'deny', reason: 'policy.trello_password_retired' }],
    ['Trello password, SSO required', { subject: account({ managers: [sso] }), stage: 'first_factor', method: 'trello_password' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['Google, two-step on', { subject: account({ hasPassword: false, twoStepEnabled: true }), stage: 'first_factor', method: 'google' }, { outcome: 'second_factor', methods: ['totp', 'recovery_code'] }],
    ['Google, SSO required', { subject: account({ managers: [sso] }), stage: 'first_factor', method: 'google' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['a second factor is not a first', { subject: account(), stage: 'first_factor', method: 'totp' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],

    ['second factor: code', { subject: account({ twoStepEnabled: true }), stage: 'second_factor', method: 'totp' }, { outcome: 'allow', acr: ACR_TWO_FACTORS }],
    ['second factor: deactivated meanwhile', { subject: account({ status: 'deactivated', twoStepEnabled: true }), stage: 'second_factor', method: 'recovery_code' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['second factor: a password is not one', { subject: account(), stage: 'second_factor', method: 'password' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],

    // A password older than the manager allows (decision 0039): replaced once every factor is proven.
    ['password older than the policy allows', { subject: account({ passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'first_factor', method: 'password' }, { outcome: 'change_password', acr: ACR_ONE_FACTOR }],
    ['password within the age the policy allows', { subject: account({ passwordChangedAt: NOW - 29 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['old password, no age limit', { subject: account({ passwordChangedAt: NOW - 3000 * 86_400 }), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['old password with two-step on: the code first', { subject: account({ twoStepEnabled: true, passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'first_factor', method: 'password' }, { outcome: 'second_factor', methods: ['totp', 'recovery_code'] }],
    ['old password under a two-step policy: enrolment first', { subject: account({ passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30, twoStepRequired: true } }] }), stage: 'first_factor', method: 'password' }, { outcome: 'enrol', factor: 'totp' }],
    ['old password, then the code: change it now', { subject: account({ twoStepEnabled: true, passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'second_factor', method: 'totp', earlierAmr: ['pwd'] }, { outcome: 'change_password', acr: ACR_TWO_FACTORS }],
    ['Google, then the code, with an old password: not the password that was used', { subject: account({ twoStepEnabled: true, passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'second_factor', method: 'totp', earlierAmr: ['fed'] }, { outcome: 'allow', acr: ACR_TWO_FACTORS }],
    ['Google with an old password: not the password that was used', { subject: account({ passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'first_factor', method: 'google' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['the strictest age of two managers', { subject: account({ passwordChangedAt: NOW - 8 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }, { ...enterprise, rules: { passwordMaxAgeDays: 7 } }] }), stage: 'first_factor', method: 'password' }, { outcome: 'change_password', acr: ACR_ONE_FACTOR }],
    ['a refresh is not a login: an old password does not stop it', { subject: account({ passwordChangedAt: NOW - 31 * 86_400, managers: [{ ...orgManager, rules: { passwordMaxAgeDays: 30 } }] }), stage: 'refresh', provenance: oneFactor }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],

    ['sign-up at a free address', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'sign_up' }, { outcome: 'allow' }],
    ['sign-up at a taken address', { subject: account(), stage: 'sign_up' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],

    ['reset request, active', { subject: account(), stage: 'reset_request' }, { outcome: 'allow' }],
    ['reset request, password-less Google account', { subject: account({ hasPassword: false }), stage: 'reset_request' }, { outcome: 'allow' }],
    ['reset request, deactivated', { subject: account({ status: 'deactivated' }), stage: 'reset_request' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['reset request, closed within grace (the login after it reopens)', { subject: account({ status: 'closed', reopenable: true }), stage: 'reset_request' }, { outcome: 'allow' }],
    ['reset request, closed past grace', { subject: account({ status: 'closed' }), stage: 'reset_request' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['reset request, SSO required', { subject: account({ managers: [sso] }), stage: 'reset_request' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],
    ['reset completion, deactivated meanwhile', { subject: account({ status: 'deactivated' }), stage: 'reset_complete' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['reset completion, SSO required meanwhile', { subject: account({ managers: [sso] }), stage: 'reset_complete' }, { outcome: 'use_connector', connector: 'acme-oidc', manager: 'Acme' }],

    ['email recovery, unmanaged', { subject: account(), stage: 'email_recovery' }, { outcome: 'allow' }],
    ['email recovery, managed', { subject: account({ managers: [enterprise] }), stage: 'email_recovery' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['email recovery, a Trello member without an account', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'email_recovery' }, { outcome: 'allow' }],
    ['email recovery, a Trello Enterprise\'s member without an account', { subject: { kind: 'address', email: 'x@example.com', managers: [enterprise] }, stage: 'email_recovery' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],

    ['email change, unmanaged', { subject: account(), stage: 'email_change' }, { outcome: 'allow' }],
    ['email change, managed by an organization', { subject: account({ managers: [orgManager] }), stage: 'email_change' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['email change, managed by a Trello Enterprise (linked or not)', { subject: account({ managers: [enterprise], trelloLinked: true }), stage: 'email_change' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['email change, both managers', { subject: account({ managers: [orgManager, enterprise] }), stage: 'email_change' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['email change, deactivated', { subject: account({ status: 'deactivated' }), stage: 'email_change' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['email change, no account', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'email_change' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['close, unmanaged', { subject: account(), stage: 'close_account' }, { outcome: 'allow' }],
    ['close, managed by an organization', { subject: account({ managers: [orgManager] }), stage: 'close_account' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['close, managed by a Trello Enterprise', { subject: account({ managers: [enterprise] }), stage: 'close_account' }, { outcome: 'deny', reason: 'policy.method_not_allowed' }],
    ['close, already closed', { subject: account({ status: 'closed', reopenable: true }), stage: 'close_account' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['an organization without rules changes no login', { subject: account({ managers: [orgManager] }), stage: 'first_factor', method: 'password' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],

    ['reauthenticate: recent password login', { subject: account(), stage: 'reauthenticate', provenance: oneFactor }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['reauthenticate: old login', { subject: account(), stage: 'reauthenticate', provenance: { ...oneFactor, authTime: NOW - REAUTHENTICATION_MAX_AGE_SECONDS - 1 } }, { outcome: 'reauthenticate', methods: ['password', 'google'], wantedAcr: ACR_ONE_FACTOR }],
    ['reauthenticate: password-less account proves itself through Google', { subject: account({ hasPassword: false }), stage: 'reauthenticate' }, { outcome: 'reauthenticate', methods: ['google'], wantedAcr: ACR_ONE_FACTOR }],
    ['reauthenticate: one factor where two are required', { subject: account({ twoStepRequired: true, twoStepEnabled: true }), stage: 'reauthenticate', provenance: oneFactor }, { outcome: 'reauthenticate', methods: ['password', 'google'], wantedAcr: ACR_TWO_FACTORS }],
    ['reauthenticate: SSO account', { subject: account({ managers: [sso] }), stage: 'reauthenticate', provenance: oneFactor }, { outcome: 'reauthenticate', methods: ['connector:acme-oidc'], wantedAcr: ACR_ONE_FACTOR }],

    ['turn two-step off, recent two-factor login', { subject: account({ twoStepEnabled: true }), stage: 'disable_factor', provenance: twoFactors }, { outcome: 'allow', acr: ACR_TWO_FACTORS }],
    ['turn two-step off, one-factor login', { subject: account({ twoStepEnabled: true }), stage: 'disable_factor', provenance: oneFactor }, { outcome: 'reauthenticate', methods: ['password', 'google'], wantedAcr: ACR_TWO_FACTORS }],
    ['turn two-step off where it is required', { subject: account({ twoStepEnabled: true, twoStepRequired: true }), stage: 'disable_factor', provenance: twoFactors }, { outcome: 'deny', reason: 'policy.two_step_required' }],

    ['bulk migration to an active account', { subject: account(), stage: 'bulk_migration' }, { outcome: 'allow' }],
    ['bulk migration to a deactivated account', { subject: account({ status: 'deactivated' }), stage: 'bulk_migration' }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['bulk migration creating an account', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'bulk_migration' }, { outcome: 'allow' }],

    ['refresh, nothing changed', { subject: account(), stage: 'refresh', provenance: oneFactor }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['refresh, account deactivated', { subject: account({ status: 'deactivated' }), stage: 'refresh', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['refresh, two-step became required', { subject: account({ twoStepRequired: true }), stage: 'refresh', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['refresh, two-step required and proven', { subject: account({ twoStepRequired: true }), stage: 'refresh', provenance: twoFactors }, { outcome: 'allow', acr: ACR_TWO_FACTORS }],
    ['refresh, SSO became required', { subject: account({ managers: [sso] }), stage: 'refresh', provenance: twoFactors }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['refresh, SSO login', { subject: account({ managers: [sso] }), stage: 'refresh', provenance: { ...oneFactor, connector: 'acme-oidc' } }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['refresh, login recorded before levels', { subject: account(), stage: 'refresh' }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['userinfo, two-step became required', { subject: account({ twoStepRequired: true }), stage: 'userinfo', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['api, closed account', { subject: account({ status: 'closed', reopenable: true }), stage: 'api', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['api, unknown account', { subject: { kind: 'address', email: 'x@example.com' }, stage: 'api' }, { outcome: 'deny', reason: 'policy.account_inactive' }],

    // A browser session reused at /auth: the login prompt runs again when it no longer suffices.
    ['session, nothing changed', { subject: account(), stage: 'session', provenance: oneFactor }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
    ['session, two-step became required', { subject: account({ twoStepRequired: true }), stage: 'session', provenance: oneFactor }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['session, relying party asks for two factors', { subject: account(), stage: 'session', provenance: oneFactor, wantedAcr: ACR_TWO_FACTORS }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['session, two factors satisfy a request for one', { subject: account(), stage: 'session', provenance: twoFactors, wantedAcr: ACR_ONE_FACTOR }, { outcome: 'allow', acr: ACR_TWO_FACTORS }],
    ['session, account deactivated', { subject: account({ status: 'deactivated' }), stage: 'session', provenance: twoFactors }, { outcome: 'deny', reason: 'policy.account_inactive' }],
    ['session, SSO became required', { subject: account({ managers: [sso] }), stage: 'session', provenance: twoFactors }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['session idle longer than the timeout', { subject: account({ managers: [{ ...orgManager, rules: { idleTimeoutSeconds: 900 } }] }), stage: 'session', provenance: { ...oneFactor, authTime: NOW - 3600, lastActive: NOW - 901 } }, { outcome: 'deny', reason: 'policy.login_again' }],
    ['session used within the idle timeout', { subject: account({ managers: [{ ...orgManager, rules: { idleTimeoutSeconds: 900 } }] }), stage: 'session', provenance: { ...oneFactor, authTime: NOW - 3600, lastActive: NOW - 899 } }, { outcome: 'allow', acr: ACR_ONE_FACTOR }],
  ];

  for (const [name, input, expected] of table) {
    it(name, () => expect(run(input)).to.deep.equal(expected));
  }

  it('decides the token stages without whether two-step is on, a Trello member is linked or a password is set (the token loader leaves them out)', () => {
    const tokenStages: Stage[] = ['refresh', 'userinfo', 'api', 'session'];
    const bases = [account(), account({ twoStepRequired: true }), account({ status: 'deactivated' }), account({ managers: [sso] }), account({ managers: [requires2sv] })];
    const provenances = [undefined, oneFactor, twoFactors, { ...oneFactor, connector: 'acme-oidc' }];
    for (const stage of tokenStages) for (const base of bases) for (const provenance of provenances) for (const wantedAcr of [undefined, ACR_TWO_FACTORS] as const) {
      const answers = [false, true].flatMap((flag) => [
        run({ subject: { ...base, twoStepEnabled: flag }, stage, ...(provenance ? { provenance } : {}), ...(wantedAcr ? { wantedAcr } : {}) }),
        run({ subject: { ...base, trelloLinked: flag }, stage, ...(provenance ? { provenance } : {}), ...(wantedAcr ? { wantedAcr } : {}) }),
        run({ subject: { ...base, hasPassword: flag }, stage, ...(provenance ? { provenance } : {}), ...(wantedAcr ? { wantedAcr } : {}) }),
      ]);
      for (const answer of answers) expect(answer, `${stage}`).to.deep.equal(answers[0]);
    }
  });

  it('takes the longest minimum password length its managers set, for an account or an address on their domain', () => {
    expect(passwordMinLength(account())).to.equal(0);
    expect(passwordMinLength(account({ managers: [{ ...orgManager, rules: { passwordMinLength: 14 } }, enterprise] }))).to.equal(14);
    expect(passwordMinLength(account({ managers: [{ ...orgManager, rules: { passwordMinLength: 14 } }, { ...enterprise, rules: { passwordMinLength: 20 } }] }))).to.equal(20);
    expect(passwordMinLength({ kind: 'address', email: 'x@acme.test', managers: [{ ...orgManager, rules: { passwordMinLength: 16 } }] })).to.equal(16);
  });

  it('answers every stage and method without throwing', () => {
    const stages: Stage[] = ['identify', 'first_factor', 'second_factor', 'sign_up', 'reset_request', 'reset_complete', 'email_recovery', 'email_change', 'close_account', 'reauthenticate', 'disable_factor', 'bulk_migration', 'refresh', 'userinfo', 'api', 'session'];
    const methods: (Method | undefined)[] = [undefined, 'password', 'trello_password', 'google', 'totp', 'recovery_code', 'email', 'connector:x'];
    const subjects = [account(), account({ status: 'deactivated' }), account({ managers: [sso, requires2sv] }), { kind: 'address' as const, email: 'x@example.com' }];
    for (const stage of stages) for (const method of methods) for (const subject of subjects) {
      const decision = run({ subject, stage, ...(method ? { method } : {}) });
      expect(['allow', 'second_factor', 'enrol', 'use_connector', 'reauthenticate', 'deny']).to.include(decision.outcome);
    }
  });
});

describe('assurance levels', () => {
  it('takes the lowest known level a relying party lists, ignoring unknown values', () => {
    expect(requestedLevel(`urn:other ${ACR_TWO_FACTORS}`)).to.equal(ACR_TWO_FACTORS);
    expect(requestedLevel(`${ACR_TWO_FACTORS} ${ACR_ONE_FACTOR}`)).to.equal(ACR_ONE_FACTOR);
    expect(requestedLevel('urn:other')).to.equal(undefined);
    expect(requestedLevel(undefined)).to.equal(undefined);
  });

  it('reads the level from what the engine stored, amr alone included', () => {
    expect(provenanceFrom({ amr: ['pwd', 'otp', 'mfa'], authTime: 5 })).to.deep.equal({ amr: ['pwd', 'otp', 'mfa'], acr: ACR_TWO_FACTORS, authTime: 5 });
    expect(provenanceFrom({ amr: ['fed'], acr: ACR_ONE_FACTOR, authTime: 5, connector: 'acme' })).to.deep.equal({ amr: ['fed'], acr: ACR_ONE_FACTOR, authTime: 5, connector: 'acme' });
    expect(provenanceFrom({})).to.equal(undefined);
  });
});
