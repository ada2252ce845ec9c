import Router from '@koa/router';
import type { AccountService } from '../identity/accounts.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { TrelloLinking } from '../legacy-trello/linking.ts';
import type { BrowserSessions } from '../oidc/browser-session.ts';
import { AppError } from '../shared/errors.ts';

/**
 * GET /api/trello/members?member_id=… or ?email=… (docs/flows/trello-migration.md): for the
 * Trello relying party only, authenticated with an access token from its client credentials.
 * Trello uses the answer to switch off its legacy login form per member:
 *
 * - `{ status: "unlinked", member_id }` — still a legacy account;
 * - `{ status: "linked", member_id, account_id }` — logs in here only, its Trello password is dead
 *   (by address: only the account's current address; an address dropped at linking is unknown);
 * - `{ status: "retired", account_id, use_email }` — an address removed at linking;
 * - 404 `{ status: "unknown" }` — no legacy member and no retired address match.
 */
export function trelloApiRoutes(deps: { linking: TrelloLinking; accounts: AccountService; sessions: BrowserSessions; trelloClientId: string }) {
  const { linking } = deps;
  const router = new Router();

  async function authorize(ctx: Parameters<Parameters<typeof router.get>[1]>[0]) {
    ctx.set('Cache-Control', 'no-store');
    const clientId = await deps.sessions.serviceClient(ctx);
    if (!clientId) {
      ctx.set('WWW-Authenticate', 'Bearer realm="lanyard", error="invalid_token"');
      throw new AppError('api.unauthenticated', 401);
    }
    if (clientId !== deps.trelloClientId) throw new AppError('api.forbidden', 403);
  }

  // Linking is irreversible (docs/flows/trello-migration.md): there is no unlink, and a request
  // for one is answered as a conflict with the current state, never silently ignored.
  // The answer says what is true of this member: unknown, never linked, or linked for good.
  router.delete('/api/trello/members/:memberId/link', async (ctx) => {
    await authorize(ctx);
    const id = ctx.params.memberId ?? '';
    const member = id.length <= 64 ? await linking.findByMemberId(id) : undefined;
    if (!member) {
      ctx.status = 404;
      ctx.body = { status: 'unknown' };
      return;
    }
    throw new AppError(member.linked_account_id ? 'trello.link_irreversible' : 'trello.not_linked', 409);
  });

  router.get('/api/trello/members', async (ctx) => {
    await authorize(ctx);

    const memberId = typeof ctx.query.member_id === 'string' ? ctx.query.member_id : undefined;
    const emailInput = typeof ctx.query.email === 'string' ? ctx.query.email : undefined;
    if (Boolean(memberId) === Boolean(emailInput)) throw new AppError('api.trello_query', 400);

    if (memberId) {
      const member = memberId.length <= 64 ? await linking.findByMemberId(memberId) : undefined;
      if (!member) return unknown();
      ctx.body = member.linked_account_id
        ? { status: 'linked', member_id: member.member_id, account_id: member.linked_account_id }
        : { status: 'unlinked', member_id: member.member_id };
      return;
    }
    const email = normalizeEmail(emailInput);
    if (!email) throw new AppError('api.trello_query', 400);
    const retired = await linking.findRetired(email);
    if (retired) {
      const account = await deps.accounts.findById(retired.account_id);
      ctx.body = { status: 'retired', account_id: retired.account_id, use_email: account?.email ?? null };
      return;
    }
    // Only an address the member still owns resolves to it: an unverified one dropped at
    // linking may be somebody else's now (decision 0020).
    const owner = await linking.memberByOwnedEmail(email);
    if (owner?.account_id) ctx.body = { status: 'linked', member_id: owner.member_id, account_id: owner.account_id };
    else if (owner) ctx.body = { status: 'unlinked', member_id: owner.member_id };
    else unknown();

    function unknown() {
      ctx.status = 404;
      ctx.body = { status: 'unknown' };
    }
  });

  return router;
}
