import type { Database } from '../persistence/db.ts';
import type { AccountQueries } from '../persistence/queries/accounts.ts';
import type { InvitationRow, OrganizationQueries } from '../persistence/queries/organizations.ts';
import type { Outbox } from '../mail/outbox.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { Clock } from '../shared/clock.ts';
import { hmac } from '../shared/crypto.ts';
import { newId, randomSecret } from '../shared/ids.ts';
import type { AdminAudit, AuditMeta } from './admin-audit.ts';
import type { Throttle } from '../identity/throttle.ts';
import type { AccessProblem, OrganizationService, Throttled } from './organizations.ts';
import { displayTime } from '../shared/display-time.ts';

/**
 * Admin invitations (docs/flows/organizations.md, "Invitations"). An admin invites an address;
 * the link mailed there makes whoever signs in with that address an admin. The invitation is
 * for the address, not for an account: inviting an address without an account sends the same
 * mail (nothing tells the admin whether an account exists), and accepting needs the signed-in
 * account's address to be the invited one. One use, expires, revocable; only a keyed hash of
 * the link's token is stored (HMAC with the verification-code key), so a copy of the table
 * cannot be turned into working links.
 */
export interface InvitationView {
  id: string;
  email: string;
  invitedBy: string;
  createdAt: Date;
  expiresAt: Date;
}

/** What the link's page shows before accepting. */
export interface InvitationPreview {
  organizationId: string;
  organizationName: string;
  email: string;
  expiresAt: Date;
}

export type InvitationProblem = 'invitation.invalid' | 'invitation.expired' | 'invitation.used';

/** Open invitations one organization may have: a bound on the mail one admin can make us send. */
export const MAX_OPEN_INVITATIONS = 50;

export function createInvitationService(deps: {
  db: Database;
  accounts: AccountQueries;
  organizations: OrganizationQueries;
  service: Pick<OrganizationService, 'authorize'>;
  audit: AdminAudit;
  outbox: Outbox;
  clock: Clock;
  /** HMAC key of stored token hashes (the verification-code key). */
  codeKey: Buffer;
  issuer: string;
  ttlSeconds: number;
  /** Limits invitation mail per invited address and per inviting admin (scopes invitation, invitation-admin). */
  throttle: Pick<Throttle, 'hit'>;
}) {
  const { db, accounts, organizations, audit, outbox, clock, codeKey } = deps;
  const now = () => new Date(clock.now());
  const hashOf = (token: string) => hmac(codeKey, token);

  const view = (row: InvitationRow): InvitationView => ({ id: row.id, email: row.email, invitedBy: row.invited_by, createdAt: row.created_at, expiresAt: row.expires_at });

  /** The invitation behind a link's token, or why it cannot be used. */
  async function find(tokenInput: unknown): Promise<{ ok: true; row: InvitationRow } | { ok: false; problem: InvitationProblem }> {
    // Tokens are 43 base64url characters; anything else is not looked up.
    if (typeof tokenInput !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(tokenInput)) return { ok: false, problem: 'invitation.invalid' };
    const row = await organizations.findInvitation(hashOf(tokenInput));
    if (!row) return { ok: false, problem: 'invitation.invalid' };
    if (row.accepted_at) return { ok: false, problem: 'invitation.used' };
    if (row.expires_at.getTime() <= clock.now()) return { ok: false, problem: 'invitation.expired' };
    return { ok: true, row };
  }

  return {
    /**
     * Invites `emailInput` to be an admin. A new invitation to the same address replaces the
     * open one (its link stops working).
     *
     * Each invitation mails an address the admin typed, with text the admin chose (the
     * organization's name): limited per invited address, across organizations, so nobody's
     * mailbox can be flooded whoever invites it, and per inviting admin, so one admin cannot
     * mail many strangers (`invitation.throttled`, with the wait). Re-inviting counts too.
     * Counted after the checks that refuse without mail, so a typo costs nothing.
     */
    async invite(actorId: string, organizationId: string, emailInput: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; invitation: InvitationView } | { ok: false; problem: AccessProblem | 'invitation.email_invalid' | 'invitation.already_admin' | 'invitation.limit' } | Throttled<'invitation.throttled'>
    > {
      const access = await deps.service.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      const email = normalizeEmail(emailInput);
      if (!email) return { ok: false, problem: 'invitation.email_invalid' };
      // The admins are listed on the same page: saying one already is reveals nothing new.
      const admins = await organizations.members(organizationId, 'admin');
      if (admins.some((a) => a.email.toLowerCase() === email)) return { ok: false, problem: 'invitation.already_admin' };
      const open = await organizations.openInvitations(organizationId, now());
      if (open.length >= MAX_OPEN_INVITATIONS && !open.some((i) => i.email.toLowerCase() === email)) return { ok: false, problem: 'invitation.limit' };
      // The admin's own counter first: an admin already waiting uses up nothing of the address's.
      // One answer for both, so the wait does not say whether others invited this address.
      for (const [scope, subject] of [['invitation-admin', actorId], ['invitation', email]] as const) {
        const gate = await deps.throttle.hit(scope, subject, undefined);
        if (!gate.ok) return { ok: false, problem: 'invitation.throttled', retryAfterSeconds: gate.retryAfterSeconds };
      }
      const inviter = await accounts.findById(actorId);
      const token = randomSecret(32);
      const at = now();
      const expiresAt = new Date(at.getTime() + deps.ttlSeconds * 1000);
      const id = newId('inv');
      await db.transaction(async (tx) => {
        // One replacement at a time per organization: two invitations to one address at once
        // would otherwise both delete the open one and collide on inserting (a unique index).
        await organizations.lock(tx, organizationId);
        await organizations.replaceInvitation(tx, { id, organizationId, email, role: 'admin', tokenHash: hashOf(token), invitedBy: actorId, now: at, expiresAt });
        await audit.record(tx, organizationId, { action: 'invitation.sent', actorId, targetType: 'invitation', targetId: id, targetLabel: email, detail: { expiresAt: expiresAt.toISOString() } }, meta);
        await outbox.enqueue(tx, {
          to: email,
          template: 'organization-invitation',
          data: {
            email,
            organization: access.name,
            inviter: inviter?.name ? `${inviter.name} (${inviter.email})` : inviter?.email ?? 'An admin',
            link: `${deps.issuer}/admin/invitation?token=${token}`,
            expires: displayTime(expiresAt),
          },
        });
      });
      outbox.kick();
      return { ok: true, invitation: { id, email, invitedBy: actorId, createdAt: at, expiresAt } };
    },

    /** The organization's open (not accepted, not expired) invitations. */
    async listOpen(actorId: string, organizationId: string): Promise<{ ok: true; invitations: InvitationView[] } | { ok: false; problem: AccessProblem }> {
      const access = await deps.service.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      return { ok: true, invitations: (await organizations.openInvitations(organizationId, now())).map(view) };
    },

    /** Withdraws an open invitation: its link no longer works. */
    async revoke(actorId: string, organizationId: string, invitationId: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; email: string } | { ok: false; problem: AccessProblem | 'invitation.not_found' }
    > {
      const access = await deps.service.authorize(actorId, organizationId, 'admin');
      if (!access.ok) return access;
      if (typeof invitationId !== 'string' || invitationId.length > 100) return { ok: false, problem: 'invitation.not_found' };
      return db.transaction(async (tx) => {
        const row = await organizations.revokeInvitation(tx, organizationId, invitationId);
        if (!row) return { ok: false as const, problem: 'invitation.not_found' as const };
        await audit.record(tx, organizationId, { action: 'invitation.revoked', actorId, targetType: 'invitation', targetId: row.id, targetLabel: row.email }, meta);
        return { ok: true as const, email: row.email };
      });
    },

    /** What the link's page shows: the organization and the invited address, or why the link cannot be used. */
    async preview(token: unknown): Promise<{ ok: true; invitation: InvitationPreview } | { ok: false; problem: InvitationProblem }> {
      const found = await find(token);
      if (!found.ok) return found;
      const org = await organizations.find(found.row.organization_id);
      if (!org) return { ok: false, problem: 'invitation.invalid' };
      return { ok: true, invitation: { organizationId: org.id, organizationName: org.name, email: found.row.email, expiresAt: found.row.expires_at } };
    },

    /**
     * Accepts the invitation for the signed-in account, whose address must be the invited one
     * (`invitation.wrong_account` otherwise: the page says which address to sign in with).
     * Spending the token and adding the admin happen in one transaction; a second submit finds
     * it spent.
     */
    async accept(actorId: string, token: unknown, meta: AuditMeta = {}): Promise<
      { ok: true; organizationId: string } | { ok: false; problem: InvitationProblem | 'invitation.wrong_account' | 'account.inactive' }
    > {
      const found = await find(token);
      if (!found.ok) return found;
      const actor = await accounts.findById(actorId);
      if (!actor || actor.status !== 'active') return { ok: false, problem: 'account.inactive' };
      if (actor.email.toLowerCase() !== found.row.email.toLowerCase()) return { ok: false, problem: 'invitation.wrong_account' };
      const at = now();
      return db.transaction(async (tx) => {
        const spent = await organizations.acceptInvitation(tx, hashOf(token as string), actorId, at);
        if (!spent) return { ok: false as const, problem: 'invitation.used' as const };
        await organizations.addMember(tx, { organizationId: spent.organization_id, accountId: actorId, role: spent.role, addedBy: spent.invited_by, now: at });
        await audit.record(tx, spent.organization_id, { action: 'invitation.accepted', actorId, targetType: 'invitation', targetId: spent.id, targetLabel: spent.email }, meta);
        return { ok: true as const, organizationId: spent.organization_id };
      });
    },
  };
}

export type InvitationService = ReturnType<typeof createInvitationService>;
