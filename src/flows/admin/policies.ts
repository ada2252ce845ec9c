import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { MAX_ASSIGN, type AuthenticationPolicies, type PolicyInput, type PolicyView } from '../../organizations/authentication-policies.ts';
import type { ManagedAccounts } from '../../organizations/managed-accounts.ts';
import type { Message } from '../../http/messages.ts';
import { parseForm } from '../../http/validate.ts';
import { adminMessage } from './messages.ts';
import type { ConsoleKit } from './managed-accounts.ts';

/**
 * The console's authentication policies pages (docs/flows/organizations.md "Authentication
 * policies", decision 0038): the list with the default, a policy's form (create and edit), make
 * default, delete, "sign everyone out", and assigning managed accounts — one from its page, many
 * from the managed-accounts list. The service decides who may do what and checks the settings;
 * these pages say what each setting and action does to the people under the policy, the move
 * from passwords to SSO included. Every form carries its CSRF token (the forms router checks it,
 * and the console's gate asks for a recent login before any POST), and answers 303.
 */

/** What each refusal says; anything else falls back to the console's table. */
const MESSAGES: Record<string, Message> = {
  'auth_policy.not_found': { title: 'No such policy', text: 'It was deleted meanwhile, or belongs to another organization.' },
  'auth_policy.name_invalid': { title: 'Check the name', text: 'Give the policy a name of 1 to 100 characters, with something visible and no invisible formatting characters.' },
  'auth_policy.name_taken': { title: 'That name is taken', text: 'Another policy of this organization has this name. Choose another.' },
  'auth_policy.login_method': { title: 'Choose how people sign in', text: 'Choose email and password, or your company’s single sign-on.' },
  'auth_policy.connector_required': { title: 'Choose the identity provider', text: 'Single sign-on sends people to one of your organization’s identity providers. Choose which one — or register one first (Identity providers).' },
  'auth_policy.connector_not_found': { title: 'No such identity provider', text: 'It was removed meanwhile, or belongs to another organization. Choose one from the list.' },
  'auth_policy.connector_disabled': { title: 'That identity provider is turned off', text: 'Turn it on first: a policy can’t send people to a provider that is off.' },
  'auth_policy.connector_untested': { title: 'Test the identity provider first', text: 'It has never completed a login. Run “Test connection” on its page until it works, so nobody is sent to a sign-in that doesn’t work — then choose it here.' },
  'auth_policy.min_length': { title: 'Check the minimum password length', text: 'Enter a whole number of characters from 8 to 128, or leave it empty for the service’s own minimum.' },
  'auth_policy.max_age': { title: 'Check the password expiry', text: 'Enter a whole number of days from 1 to 3650, or leave it empty for passwords that don’t expire.' },
  'auth_policy.idle_timeout': { title: 'Check the idle timeout', text: 'Enter a whole number of minutes from 5 to 525600 (a year), or leave it empty for no idle timeout.' },
  'auth_policy.max_session': { title: 'Check the maximum session length', text: 'Enter a whole number of hours from 1 to 8760 (a year), or leave it empty for no maximum.' },
  'auth_policy.limit': { title: 'Too many policies', text: 'An organization can have at most 50 authentication policies. Delete one you no longer need first.' },
  'auth_policy.default_in_use': { title: 'This is the default policy', text: 'Every account assigned to no other policy follows it. Make another policy the default first, then delete this one.' },
  'assign.none': { title: 'No account selected', text: 'Tick the accounts on the managed-accounts list first, then choose “Change policy”.' },
  'assign.too_many': { title: 'Too many accounts at once', text: `A policy change takes at most ${MAX_ASSIGN} accounts at a time. Select fewer and repeat.` },
};
const policyMessage = (code: string): Message => MESSAGES[code] ?? adminMessage(code);

const numberField = z.string().max(20).default('');
export const policyInput = z.object({
  name: z.string().max(400).default(''),
  login_method: z.string().max(20).default('password'),
  connector: z.string().max(100).default(''),
  two_step_required: z.string().max(10).optional(),
  password_min_length: numberField,
  password_max_age_days: numberField,
  idle_timeout_minutes: numberField,
  max_session_hours: numberField,
});
type PolicyForm = z.infer<typeof policyInput>;
const assignInput = z.object({ ids: z.string().max(20_000).default(''), policy: z.string().max(100).default('') });

/** A form's number in the unit shown, in seconds for the service; anything not a whole number goes as typed (refused there). */
function seconds(value: string, unit: number): unknown {
  const trimmed = value.trim();
  if (!trimmed) return null;
  return /^\d{1,9}$/.test(trimmed) ? Number(trimmed) * unit : trimmed;
}

function inputOf(form: PolicyForm): PolicyInput {
  return {
    name: form.name,
    loginMethod: form.login_method,
    connectorId: form.connector || null,
    twoStepRequired: form.two_step_required === 'on' || form.two_step_required === 'true',
    passwordMinLength: form.password_min_length,
    passwordMaxAgeDays: form.password_max_age_days,
    idleTimeoutSeconds: seconds(form.idle_timeout_minutes, 60),
    maxSessionSeconds: seconds(form.max_session_hours, 3600),
  };
}

/** The form's values for a stored policy. */
function formOf(p: PolicyView | undefined): PolicyForm {
  return {
    name: p?.name ?? '',
    login_method: p?.loginMethod ?? 'password',
    connector: p?.connectorId ?? '',
    two_step_required: p?.twoStepRequired ? 'on' : undefined,
    password_min_length: p?.passwordMinLength ? String(p.passwordMinLength) : '',
    password_max_age_days: p?.passwordMaxAgeDays ? String(p.passwordMaxAgeDays) : '',
    idle_timeout_minutes: p?.idleTimeoutSeconds ? String(Math.round(p.idleTimeoutSeconds / 60)) : '',
    max_session_hours: p?.maxSessionSeconds ? String(Math.round(p.maxSessionSeconds / 3600)) : '',
  };
}

const FOCUS: Record<string, string> = {
  'auth_policy.name_invalid': 'policy-name', 'auth_policy.name_taken': 'policy-name', 'auth_policy.login_method': 'method-password',
  'auth_policy.connector_required': 'policy-connector', 'auth_policy.connector_not_found': 'policy-connector', 'auth_policy.connector_disabled': 'policy-connector', 'auth_policy.connector_untested': 'policy-connector',
  'auth_policy.min_length': 'policy-min-length', 'auth_policy.max_age': 'policy-max-age', 'auth_policy.idle_timeout': 'policy-idle', 'auth_policy.max_session': 'policy-max-session',
};

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function policyPages(router: Router, kit: ConsoleKit, deps: { policies: AuthenticationPolicies; managed: ManagedAccounts }) {
  const { page, signedIn, me, meta, done, notFound, shell, when } = kit;
  const { policies, managed } = deps;
  const HIDDEN = new Set(['organization.not_found', 'organization.forbidden', 'account.inactive', 'auth_policy.not_found']);
  const base = (ctx: Context) => `/admin/organizations/${encodeURIComponent(ctx.params.organizationId!)}/policies`;

  /** A policy as the pages describe it: each rule in words. */
  function describe(p: PolicyView, connectors: { id: string; name: string }[], path: string) {
    const connector = connectors.find((c) => c.id === p.connectorId);
    const rules = [
      p.loginMethod === 'sso' ? `Single sign-on through ${connector?.name ?? 'a removed identity provider'} only` : 'Email and password (or Google)',
      p.twoStepRequired ? (p.loginMethod === 'sso' ? 'Two-step verification by the identity provider' : 'Two-step verification required') : 'Two-step verification optional',
      ...(p.loginMethod === 'password' && p.passwordMinLength ? [`Passwords of at least ${p.passwordMinLength} characters`] : []),
      ...(p.loginMethod === 'password' && p.passwordMaxAgeDays ? [`Passwords expire after ${plural(p.passwordMaxAgeDays, 'day')}`] : []),
      ...(p.idleTimeoutSeconds ? [`Signed out after ${plural(Math.round(p.idleTimeoutSeconds / 60), 'minute')} idle`] : []),
      ...(p.maxSessionSeconds ? [`Signed in for at most ${plural(Math.round(p.maxSessionSeconds / 3600), 'hour')}`] : []),
    ];
    return { ...p, path: `${path}/${encodeURIComponent(p.id)}`, rules, connectorName: connector?.name, signedOutAt: when(p.reauthenticateAfter) };
  }

  // ---- The list ------------------------------------------------------------------------------

  async function listPage(ctx: Context, status: number) {
    const shellData = await shell(ctx, ctx.params.organizationId!, 'policies');
    const listed = await policies.list(me(ctx), shellData.organization.id);
    if (!listed.ok) return notFound();
    const outcome = kit.takeFlash(ctx);
    page(ctx, status, 'admin/policies', {
      title: `Authentication policies · ${shellData.organization.name}`,
      ...shellData,
      policies: listed.policies.map((p) => describe(p, listed.connectors, base(ctx))),
      hasConnectors: listed.connectors.length > 0,
      outcome: outcome.policy,
    });
  }

  router.get('/organizations/:organizationId/policies', signedIn, (ctx) => listPage(ctx, 200));

  // ---- Assigning accounts (before /:policyId, which would take "assign") -----------------------

  const idsOf = (raw: unknown) => (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((id): id is string => typeof id === 'string');

  async function assignPage(ctx: Context, status: number, ids: string[], error?: string) {
    const shellData = await shell(ctx, ctx.params.organizationId!, 'accounts');
    const back = `${shellData.base}/accounts`;
    const listed = await policies.list(me(ctx), shellData.organization.id);
    if (!listed.ok) return notFound();
    const found = ids.length && ids.length <= MAX_ASSIGN ? await managed.find(me(ctx), shellData.organization.id, ids) : { ok: true as const, accounts: [] };
    if (!found.ok) return notFound();
    const problem = error ?? (!ids.length ? 'assign.none' : ids.length > MAX_ASSIGN ? 'assign.too_many' : undefined);
    // One account: say which policy it follows now.
    let current: string | undefined;
    if (found.accounts.length === 1) {
      const of = await policies.policyOf(me(ctx), shellData.organization.id, found.accounts[0]!.id);
      if (of.ok) current = of.policyId ? `${listed.policies.find((p) => p.id === of.policyId)?.name ?? ''}${of.assigned ? '' : ' (the default)'}` : 'none: your organization has no policy yet';
    }
    page(ctx, problem ? (status === 200 ? 400 : status) : status, 'admin/policy-assign', {
      title: 'Change authentication policy',
      ...shellData,
      back: found.accounts.length === 1 ? `${back}/${encodeURIComponent(found.accounts[0]!.id)}` : back,
      accounts: found.accounts,
      ids: found.accounts.map((a) => a.id).join(' '),
      current,
      policies: listed.policies.map((p) => describe(p, listed.connectors, base(ctx))),
      unknown: new Set(ids).size - found.accounts.length,
      outcome: kit.takeFlash(ctx).policy,
    }, problem ? policyMessage(problem) : undefined);
  }

  router.get('/organizations/:organizationId/policies/assign', signedIn, (ctx) => assignPage(ctx, 200, idsOf(ctx.query.id)));

  router.post('/organizations/:organizationId/policies/assign', signedIn, async (ctx) => {
    const input = parseForm(ctx, assignInput);
    const ids = input.ids.split(/\s+/).filter(Boolean);
    if (!ids.length || ids.length > MAX_ASSIGN) return assignPage(ctx, 400, ids);
    const result = await policies.assign(me(ctx), ctx.params.organizationId!, ids, input.policy === 'default' || !input.policy ? null : input.policy, meta(ctx));
    if (!result.ok) {
      if (result.problem === 'auth_policy.not_found') return assignPage(ctx, 400, ids, result.problem);
      if (HIDDEN.has(result.problem)) return notFound();
      return assignPage(ctx, 400, ids, result.problem);
    }
    ctx.state.log?.info({ organizationId: ctx.params.organizationId, assigned: result.assigned, skipped: result.skipped }, 'accounts assigned to an authentication policy');
    const single = ids.length === 1 && result.assigned === 1;
    done(ctx, single ? `/admin/organizations/${encodeURIComponent(ctx.params.organizationId!)}/policies/assign?id=${encodeURIComponent(ids[0]!)}` : base(ctx), {
      policy: `${plural(result.assigned, 'account')} now follow${result.assigned === 1 ? 's' : ''} ${result.policy}, from their next login or token refresh.${result.skipped ? ` ${plural(result.skipped, 'account was', 'accounts were')} left out: not managed by this organization (any more).` : ''}`,
    });
  });

  // ---- Create and edit -----------------------------------------------------------------------

  async function formPage(ctx: Context, status: number, policyId: string | undefined, form?: PolicyForm, error?: string) {
    const shellData = await shell(ctx, ctx.params.organizationId!, 'policies');
    const listed = await policies.list(me(ctx), shellData.organization.id);
    if (!listed.ok) return notFound();
    let policy: ReturnType<typeof describe> | undefined;
    let followers = 0;
    if (policyId) {
      const got = await policies.get(me(ctx), shellData.organization.id, policyId);
      if (!got.ok) return notFound();
      policy = describe(got.policy, listed.connectors, base(ctx));
      followers = got.followers;
    }
    const outcome = kit.takeFlash(ctx);
    page(ctx, status, 'admin/policy', {
      title: policy ? `${policy.name} · Authentication policies` : 'New authentication policy',
      ...shellData,
      policy,
      followers,
      form: form ?? formOf(policy),
      action: policy ? policy.path : base(ctx),
      connectors: listed.connectors,
      first: !policy && listed.policies.length === 0,
      outcome: outcome.policy,
      focus: error ? FOCUS[error] : undefined,
    }, error ? policyMessage(error) : undefined);
  }

  router.get('/organizations/:organizationId/policies/new', signedIn, (ctx) => formPage(ctx, 200, undefined));

  router.post('/organizations/:organizationId/policies', signedIn, async (ctx) => {
    const form = parseForm(ctx, policyInput);
    const result = await policies.create(me(ctx), ctx.params.organizationId!, inputOf(form), meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return formPage(ctx, result.problem === 'auth_policy.name_taken' || result.problem === 'auth_policy.limit' ? 409 : 400, undefined, form, result.problem);
    }
    ctx.state.log?.info({ organizationId: ctx.params.organizationId, policyId: result.policy.id }, 'authentication policy created');
    done(ctx, `${base(ctx)}/${encodeURIComponent(result.policy.id)}`, { policy: result.policy.isDefault ? 'Created. As your organization’s first policy it is the default: every account it manages follows it from their next login or token refresh.' : 'Created. Assign accounts to it from the managed-accounts list.' });
  });

  router.get('/organizations/:organizationId/policies/:policyId', signedIn, (ctx) => formPage(ctx, 200, ctx.params.policyId));

  router.post('/organizations/:organizationId/policies/:policyId', signedIn, async (ctx) => {
    const form = parseForm(ctx, policyInput);
    const result = await policies.update(me(ctx), ctx.params.organizationId!, ctx.params.policyId!, inputOf(form), meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return formPage(ctx, result.problem === 'auth_policy.name_taken' ? 409 : 400, ctx.params.policyId, form, result.problem);
    }
    done(ctx, `${base(ctx)}/${encodeURIComponent(result.policy.id)}`, { policy: 'Saved. The new settings apply to each person at their next login, token refresh or page.' });
  });

  router.post('/organizations/:organizationId/policies/:policyId/default', signedIn, async (ctx) => {
    const result = await policies.makeDefault(me(ctx), ctx.params.organizationId!, ctx.params.policyId!, meta(ctx));
    if (!result.ok) return notFound();
    done(ctx, base(ctx), { policy: `${result.policy.name} is now the default: every account assigned to no other policy follows it from their next login or token refresh.` });
  });

  // ---- Delete and "sign everyone out": each confirmed on a page of its own --------------------

  async function confirmPage(ctx: Context, status: number, action: 'delete' | 'sign-out', error?: string) {
    const shellData = await shell(ctx, ctx.params.organizationId!, 'policies');
    const got = await policies.get(me(ctx), shellData.organization.id, ctx.params.policyId!);
    if (!got.ok) return notFound();
    const listed = await policies.list(me(ctx), shellData.organization.id);
    if (!listed.ok) return notFound();
    const policy = describe(got.policy, listed.connectors, base(ctx));
    const blocked = action === 'delete' && policy.isDefault && listed.policies.length > 1;
    page(ctx, status, 'admin/policy-confirm', {
      title: `${action === 'delete' ? 'Delete' : 'Sign everyone out under'} ${policy.name}`,
      ...shellData,
      policy,
      action,
      followers: got.followers,
      blocked,
      last: listed.policies.length === 1,
    }, error ? policyMessage(error) : blocked ? policyMessage('auth_policy.default_in_use') : undefined);
  }

  for (const action of ['delete', 'sign-out'] as const) {
    router.get(`/organizations/:organizationId/policies/:policyId/${action}`, signedIn, (ctx) => confirmPage(ctx, 200, action));
  }

  router.post('/organizations/:organizationId/policies/:policyId/delete', signedIn, async (ctx) => {
    const result = await policies.remove(me(ctx), ctx.params.organizationId!, ctx.params.policyId!, meta(ctx));
    if (!result.ok) {
      if (HIDDEN.has(result.problem)) return notFound();
      return confirmPage(ctx, 409, 'delete', result.problem);
    }
    done(ctx, base(ctx), { policy: `${result.name} was deleted. The accounts assigned to it follow the default policy from their next login or token refresh.` });
  });

  router.post('/organizations/:organizationId/policies/:policyId/sign-out', signedIn, async (ctx) => {
    const result = await policies.signOutEveryone(me(ctx), ctx.params.organizationId!, ctx.params.policyId!, meta(ctx));
    if (!result.ok) return notFound();
    ctx.state.log?.info({ organizationId: ctx.params.organizationId, policyId: result.policy.id, accounts: result.accounts }, 'everyone under an authentication policy signed out');
    done(ctx, `${base(ctx)}/${encodeURIComponent(result.policy.id)}`, { policy: `Signed out ${plural(result.accounts, 'account')} everywhere. Each person signs in again at their next visit.` });
  });
}
