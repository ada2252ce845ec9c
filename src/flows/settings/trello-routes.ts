import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../../identity/accounts.ts';
import type { Throttle } from '../../identity/throttle.ts';
import { throttled, trelloGuessSubject } from '../throttled.ts';
import { unlessBusy } from '../busy.ts';
import type { TrelloLinking } from '../../legacy-trello/linking.ts';
import type { BrowserSessions } from '../../oidc/browser-session.ts';
import type { SecretBox } from '../../shared/crypto.ts';
import { requestMeta } from '../../http/request-meta.ts';
import type { Views } from '../../http/views.ts';
import { parseForm } from '../../http/validate.ts';
import { sealedCookie } from '../../http/sealed-cookie.ts';
import { settingsKit } from './gate.ts';
import { trelloLoginInput } from './schema.ts';
import { displayTime } from '../../shared/display-time.ts';
import { flashMessages } from '../../http/flash.ts';
import type { Reauthentication } from '../../identity/reauthentication.ts';
import { privilegedSession } from './privileged-session.ts';

/**
 * Settings → Trello (docs/flows/trello-migration.md, path 3): a signed-in person links their
 * legacy Trello account to this account at any time. A recent login (or the current password
 * typed) proves the account — a link is for good, and brings the member's Google sign-in into
 * the account, so a session left open must not be enough (decision 0087) — and the Trello
 * password proves the member; a review page shows what will happen before anything does. The
 * account keeps its address; the member's addresses are retired for it. There is no
 * unlink: the form for it does not exist, and a request for it gets 409.
 */
const COOKIE = 'lanyard.trello_link';

export function trelloSettingsRoutes(deps: { views: Views; sessions: BrowserSessions; accounts: AccountService; linking: TrelloLinking; throttle: Throttle; reauthentication: Reauthentication; box: SecretBox; now: () => number }) {
  const { linking, throttle, box } = deps;
  const { page, signedIn, account, nav, login } = settingsKit(deps);
  const { confirmView, sensitive, statusOf } = privilegedSession({ reauthentication: deps.reauthentication, throttle, account, login });
  const router = new Router({ prefix: '/account/trello' });
  // The link made answers 303 to the page (Post/Redirect/Get): a reload does not post again.
  const flash = flashMessages({ name: 'lanyard.flash', path: '/account' });
  const seal = (ctx: Context) => `trello_link:${ctx.state.sessionUid as string}`;
  const reviewCookie = sealedCookie<{ memberId: string }>(box, deps.now, { name: COOKIE, ttlSeconds: 600 });

  async function overview(ctx: Context, status: number, extra: Record<string, unknown> = {}, error?: Parameters<typeof page>[4]) {
    const member = await linking.findByAccountId(account(ctx).id);
    const linkedAt = member?.linked_at ? displayTime(member.linked_at) : undefined;
    page(ctx, status, 'settings/trello', { title: 'Trello', ...nav(ctx, 'trello'), member, linkedAt, retired: member ? await linking.retiredOf(account(ctx).id) : [], login: '', confirm: member ? undefined : await confirmView(ctx, '/account/trello'), ...extra }, error);
  }

  router.get('/', signedIn, (ctx) => overview(ctx, 200, { linkedNow: flash.take(ctx).done === 'trello_linked' }));

  router.post('/', signedIn, async (ctx) => {
    const input = parseForm(ctx, trelloLoginInput);
    if (await linking.findByAccountId(account(ctx).id)) return overview(ctx, 409, {}, 'trello.account_has_member');
    // The account first: a recent login, or its current password typed (throttled as a login).
    const confirmed = await sensitive(ctx, input.current, (proof) => deps.reauthentication.confirm(account(ctx), proof));
    if (!confirmed.ok) return overview(ctx, statusOf(confirmed.problem), { login: input.login, field: 'current' }, confirmed.problem);
    // Counted per signed-in account (by its id: a new address brings no new allowance), whatever
    // login is typed (decision 0076): a member answers
    // to its username and each of its addresses, and none of them brings an allowance of its
    // own; nor does a wait reached through one login show on the member's other logins (which a
    // per-member counter would, telling whose they are). The same subject as the link offer at
    // login (src/flows/login/trello-migration.ts): one allowance per account for both.
    const subject = trelloGuessSubject(account(ctx).id);
    // The Trello password is this form's first hash: a full hashing answers the form again, 503
    // with Retry-After, the attempt given back (decision 0063).
    const guarded = await unlessBusy(ctx, () => throttled(ctx, throttle, { scope: 'password', subject }, async () => {
      const found = await linking.findByLogin(input.login);
      // A linked member's old password is checked like none (a decoy): it is the password of an
      // account now, and this form must not become a second place to guess it.
      const named = found?.linked_account_id ? undefined : found;
      // Checked whether or not the login names a member that can be linked: the time must not tell.
      const right = await linking.checkLegacyPassword(named, input.password, { first: true });
      return named && right ? named : undefined;
    // A right password does not clear the count ('kept'): it is the password of any unlinked
    // member, maybe the guesser's own, and must not reset the allowance for guessing another's.
    }, (member) => (member ? 'kept' : 'failed')));
    if ('problem' in guarded) return overview(ctx, 503, { login: input.login }, guarded.problem);
    if (guarded.refused) return overview(ctx, 429, { login: input.login }, guarded.error);
    const member = guarded.result;
    if (!member) return overview(ctx, 401, { login: input.login }, guarded.orWait('trello.credentials'));
    reviewCookie.set(ctx, '/account/trello', seal(ctx), { memberId: member.member_id });
    const keep = account(ctx).email.toLowerCase();
    page(ctx, 200, 'settings/trello-review', {
      title: 'Link your Trello account',
      ...nav(ctx, 'trello'),
      username: member.username,
      retire: member.emails.map((e) => e.email).filter((e) => e !== keep),
    });
  });

  router.post('/link', signedIn, async (ctx) => {
    const pending = reviewCookie.get(ctx, seal(ctx));
    reviewCookie.clear(ctx, '/account/trello');
    if (!pending) return overview(ctx, 400, {}, 'trello.review_expired');
    const result = await linking.link({ memberId: pending.memberId, email: account(ctx).email, method: 'manual', existingAccountId: account(ctx).id }, requestMeta(ctx));
    if (!result.ok) return overview(ctx, result.problem === 'trello.already_linked' ? 409 : 400, {}, result.problem);
    ctx.state.log?.info({ accountId: account(ctx).id, memberId: pending.memberId }, 'trello account linked from settings');
    flash.set(ctx, { done: 'trello_linked' });
    ctx.status = 303;
    ctx.redirect('/account/trello');
  });

  // Linking cannot be undone: no form offers it, and asking for it gets a clear refusal.
  // Without a linked member there is nothing to undo, and the answer says so instead.
  router.post('/unlink', signedIn, async (ctx) => overview(ctx, 409, {}, (await linking.findByAccountId(account(ctx).id)) ? 'trello.link_irreversible' : 'trello.not_linked'));

  return router;
}
