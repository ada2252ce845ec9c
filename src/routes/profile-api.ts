import Router from '@koa/router';
import type { Context } from 'koa';
import { bodyParser } from '@koa/bodyparser';
import type { AccountRow, AccountService } from '../identity/accounts.ts';
import { initialsAvatar, profileUpdate, visibilityOf, visibleProfile, type Viewer } from '../identity/profile.ts';
import type { BrowserSessions } from '../oidc/browser-session.ts';
import type { AvatarService } from '../identity/avatars.ts';
import { AppError } from '../shared/errors.ts';
import { csrfProtection } from '../http/csrf.ts';
import { parseForm } from '../http/validate.ts';
import { identityEncodingOnly } from '../http/input-guards.ts';

/** Account ids as minted by src/shared/ids.ts: anything else is no account, without a lookup. */
const ACCOUNT_ID = /^acc_[A-Za-z0-9_-]{22}$/;

/**
 * The profile as JSON (docs/flows/profile.md), and the generated avatars.
 * - GET /api/profiles/me: your whole profile and the visibility of each field (session, or a bearer
 *   token of a first-party client: another company's application reads what was consented to at
 *   userinfo; its token gets 403 insufficient_scope here, and identifies nobody on the others).
 * - PATCH /api/profiles/me: update it (session with X-CSRF-Token, JSON body).
 * - GET /api/profiles/:id: someone's profile, with only the fields you may see.
 * - GET /avatars/:id.svg: the initials avatar, when the picture is visible to the viewer.
 * The same person is "self"; someone in an organization with the account (an admin or member of
 * an organization that manages it, or an account the same organization manages) is
 * "organization"; everyone else is "anyone" (decision 0010).
 */
export function profileApiRoutes(deps: { accounts: AccountService; sessions: BrowserSessions; avatars: AvatarService; issuer: string; csrfKey: Buffer }) {
  const { accounts, sessions, issuer } = deps;
  const router = new Router();

  /**
   * Who is asking: the account of a bearer access token the decision point still allows (stage
   * "api"), else the browser session's. A token it refuses (the account was deactivated, or
   * two-step became required after a one-factor login) identifies nobody: /me answers 401 with
   * RFC 6750 §3.1's invalid_token, as userinfo does.
   */
  async function viewer(ctx: Context): Promise<{ accountId: string; account?: AccountRow } | 'refused' | 'third-party' | undefined> {
    const bearer = await sessions.bearer(ctx);
    if (bearer) {
      if (!bearer.ok) return 'refused';
      // Another company's application gets what the person consented to, through userinfo and
      // the ID token (OIDC Core §5.4), never the whole profile here (decision 0073).
      return bearer.firstParty ? { accountId: bearer.accountId, account: bearer.account } : 'third-party';
    }
    const session = await sessions.current(ctx);
    return session ? { accountId: session.accountId } : undefined;
  }

  async function viewerAccountId(ctx: Context): Promise<string | undefined> {
    const who = await viewer(ctx);
    return typeof who === 'object' ? who.accountId : undefined;
  }

  async function activeAccount(id: string) {
    const account = await accounts.findById(id);
    return account?.status === 'active' ? account : undefined;
  }

  const present = (account: AccountRow, viewer: Viewer) => ({
    id: account.id,
    ...visibleProfile({ ...account, picture: account.picture ?? `${issuer}/avatars/${account.id}.svg` }, viewer),
  });

  router.get('/api/profiles/me', async (ctx) => {
    const who = await viewer(ctx);
    if (who === 'refused') {
      ctx.set('WWW-Authenticate', 'Bearer realm="lanyard", error="invalid_token"');
      throw new AppError('api.unauthenticated', 401);
    }
    if (who === 'third-party') {
      // RFC 6750 §3.1: a valid token that does not allow this request.
      ctx.set('WWW-Authenticate', 'Bearer realm="lanyard", error="insufficient_scope"');
      throw new AppError('api.first_party_only', 403);
    }
    // A bearer token's account came with the decision (active, loaded once); a session's is read here.
    const account = who?.account ?? (who ? await activeAccount(who.accountId) : undefined);
    if (!account) throw new AppError('api.unauthenticated', 401);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...present(account, 'self'), visibility: visibilityOf(account) };
  });

  router.patch('/api/profiles/me', identityEncodingOnly(), bodyParser({ enableTypes: ['json'], jsonLimit: '16kb' }), csrfProtection(deps.csrfKey), async (ctx) => {
    const session = await sessions.current(ctx);
    const account = session ? await activeAccount(session.accountId) : undefined;
    if (!account) throw new AppError('api.unauthenticated', 401);
    const input = parseForm(ctx, profileUpdate);
    await accounts.updateProfile(account, input);
    const updated = (await activeAccount(account.id))!;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...present(updated, 'self'), visibility: visibilityOf(updated) };
  });

  router.get('/api/profiles/:id', async (ctx) => {
    const account = ACCOUNT_ID.test(ctx.params.id!) ? await activeAccount(ctx.params.id!) : undefined;
    if (!account) throw new AppError('request.not_found', 404);
    const viewer: Viewer = await accounts.audience(await viewerAccountId(ctx), account.id);
    ctx.set('Cache-Control', 'private, no-cache');
    ctx.body = present(account, viewer);
  });

  // acc_….svg: the generated initials; acc_…-<size>.webp: an uploaded picture at a stored size.
  // Shown as the picture's visibility allows the viewer — or to anyone holding an address of it
  // released to an application (the `picture` claim: `k` names the account and the picture's
  // version; src/identity/avatars.ts, releasedPictureUrl).
  router.get('/avatars/:file', async (ctx) => {
    const match = /^(acc_[A-Za-z0-9_-]{22})(?:\.svg|-(\d{2,3})\.webp)$/.exec(ctx.params.file!);
    const account = match ? await activeAccount(match[1]!) : undefined;
    const size = match?.[2] ? Number(match[2]) : undefined;
    const stored = account && size !== undefined ? await deps.avatars.image(account.id, size) : undefined;
    // A released address opens the picture it was released for, and only while it is the current one.
    const released = account !== undefined && ctx.query.k !== undefined && (size === undefined || stored !== undefined)
      && (size === undefined || ctx.query.v === stored!.version) && deps.avatars.released(account.id, stored?.version, ctx.query.k);
    // A picture anyone may see needs no lookup of who is asking.
    const public_ = released || (account && visibleProfile({ ...account, picture: 'any' }, 'anyone').picture);
    const viewer: Viewer = account && !public_ ? await accounts.audience(await viewerAccountId(ctx), account.id) : 'anyone';
    if (!account || !(released || visibleProfile({ ...account, picture: 'any' }, viewer).picture)) throw new AppError('request.not_found', 404);
    ctx.set('Cache-Control', 'private, max-age=300');
    if (size === undefined) {
      ctx.type = 'image/svg+xml';
      ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
      ctx.body = initialsAvatar(account);
      return;
    }
    if (!stored) throw new AppError('request.not_found', 404);
    ctx.type = stored.content_type;
    ctx.set('ETag', `"${stored.version}"`);
    ctx.body = stored.image;
  });

  return router;
}
