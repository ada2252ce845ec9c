import type { Clock } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';
import { emailDomainOf } from '../persistence/queries/accounts.ts';
import type { AccountIdentityQueries } from '../persistence/queries/account-identities.ts';
import type { RetiredEmailQueries } from '../persistence/queries/retired-emails.ts';
import type { TrelloMemberQueries } from '../persistence/queries/trello-members.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import type { RequestMeta, SecurityEvents } from '../identity/security-events.ts';
import type { TrelloLinking } from '../legacy-trello/linking.ts';
import type { ConnectorIdentity } from './connector-protocol.ts';
import type { LoginConnector } from './connectors.ts';

/**
 * Which account a login through a company connector belongs to (docs/flows/sso.md, decision
 * 0034). The connector is the organization's own identity provider, trusted for the addresses on
 * the domains the organization verified and linked to it — and for nothing else:
 *
 * 1. the address the upstream asserts must be on one of the connector's linked, verified domains
 *    (`sso.domain_not_linked` otherwise: a misconfigured or hostile upstream cannot sign anybody
 *    in elsewhere), and an address the upstream itself says is unverified is refused;
 * 2. an account already linked to this (connector, subject) is that account — if its address is
 *    still on one of the connector's domains (an admin may have moved it elsewhere);
 * 3. a retired address never signs in (its owner is told which address to use);
 * 4. an unlinked Trello member whose verified address it is migrates now, like Google's
 *    automatic migration: linked to the account at that address, or to a new one;
 * 5. the account at that address is linked, only when the connector's organization manages it
 *    (claimed, or made just in time; `sso.not_managed` otherwise, decision 0083) and its address
 *    is verified here (an address nobody verified here proves nothing
 *    about who set its password: `sso.conflict`, the owner signs in with the password) — only
 *    when the upstream said `email_verified: true`: an upstream that is silent about it may let
 *    its users register any address themselves, and an existing account (perhaps with a
 *    password, perhaps another person's) is not handed over on its word
 *    (`sso.email_verification_unknown`, nothing linked; decision 0034 as amended by 0048). The
 *    same holds for step 4 when it would link the member to an existing account. SAML
 *    connectors say `true` for any asserted address (the organization's own IdP);
 * 6. otherwise an account is created just in time, without a password, managed from its
 *    creation by the organization holding the domain (`insertWith` claims it) — also when the
 *    upstream did not say whether the address is verified (nobody else's account is reached).
 *
 * Whether the account may sign in now (deactivated, closed, the policy's connector) is the
 * decision point's answer, asked by the login's completion service.
 */
export type ConnectorLoginResult =
  | { ok: true; account: AccountRow; how: 'identity' | 'trello' | 'email' | 'created' }
  /** The account is an organization admin's: its owner proves it before the link (decision 0086). */
  | { ok: true; account: AccountRow; how: 'prove' }
  | { ok: false; problem: 'sso.email_missing' | 'sso.email_unverified' | 'sso.email_verification_unknown' | 'sso.domain_not_linked' | 'sso.conflict' | 'sso.not_managed' }
  | { ok: false; problem: 'sso.email_retired'; retiredFor: string; email: string };

export function createConnectorLogin(deps: {
  db: Database;
  accounts: AccountQueries;
  identities: AccountIdentityQueries;
  retiredEmails: RetiredEmailQueries;
  trelloMembers: TrelloMemberQueries;
  linking: TrelloLinking;
  events: SecurityEvents;
  clock: Clock;
  /** Whether the organization manages the account (claimed it, or created it just in time). */
  managedBy: (organizationId: string, accountId: string) => Promise<boolean>;
  /** Whether linking this existing account needs its owner's own proof first: an organization admin's (decision 0086). */
  ownProofNeeded: (account: AccountRow) => Promise<boolean>;
}) {
  const { db, accounts, identities } = deps;
  const now = () => new Date(deps.clock.now());
  const onDomains = (connector: LoginConnector, email: string) => connector.domains.includes(emailDomainOf(email));

  async function link(tx: Queryable, connector: LoginConnector, identity: ConnectorIdentity, account: AccountRow, email: string, created: boolean, meta: RequestMeta) {
    // An account made from this sign-in was the identity's from its first moment: its link counts
    // as its owner's (decision 0086), so becoming an admin later asks for no password it never had.
    if (created) await identities.addProvenLink(tx, { provider: connector.id, subject: identity.subject, accountId: account.id, email, now: now() });
    else await identities.addIdentity(tx, { provider: connector.id, subject: identity.subject, accountId: account.id, email, now: now() });
    await deps.events.record({ type: 'identity.linked', accountId: account.id, detail: { provider: 'sso', connector: connector.id, ...(created ? { created: true } : {}) } }, meta, tx);
  }

  return {
    /**
     * The link its owner proved (decision 0086), made as the login finishes: unless the connector
     * no longer answers for the address (a domain unlinked meanwhile) or the subject is another
     * account's. A subject linked on the upstream's word before is marked proven now.
     */
    async linkProven(connector: LoginConnector, subject: string, account: Pick<AccountRow, 'id' | 'email'>, meta: RequestMeta = {}): Promise<boolean> {
      if (!onDomains(connector, account.email)) return false;
      const linked = await identities.findLink(connector.id, subject);
      if (linked && linked.account_id !== account.id) return false;
      await db.transaction(async (tx) => {
        await identities.addProvenLink(tx, { provider: connector.id, subject, accountId: account.id, email: account.email, now: now() });
        await deps.events.record({ type: 'identity.linked', accountId: account.id, detail: { provider: 'sso', connector: connector.id, proven: true } }, meta, tx);
      });
      return true;
    },

    async resolve(connector: LoginConnector, identity: ConnectorIdentity, meta: RequestMeta = {}): Promise<ConnectorLoginResult> {
      const email = identity.email ? normalizeEmail(identity.email) : undefined;
      if (!email) return { ok: false, problem: 'sso.email_missing' };
      if (!onDomains(connector, email)) return { ok: false, problem: 'sso.domain_not_linked' };
      if (identity.emailVerified === false) return { ok: false, problem: 'sso.email_unverified' };

      const linked = await identities.findLink(connector.id, identity.subject);
      if (linked) {
        const account = await accounts.findById(linked.account_id);
        if (!account) return { ok: false, problem: 'sso.conflict' };
        // The account moved to an address outside the connector's domains: the company's
        // identity provider no longer answers for it.
        if (!onDomains(connector, account.email)) return { ok: false, problem: 'sso.domain_not_linked' };
        // Linked on the upstream's word, and an admin's since: its owner proves the link once
        // (decision 0086) — a member who becomes an admin is no longer the company's alone. An
        // account without a password has nothing to prove it with, and this sign-in is how it
        // signs in (links made before owner_proven existed, a Google-made account): it goes on.
        if (!linked.owner_proven && account.password_hash && (await deps.ownProofNeeded(account))) return { ok: true, account, how: 'prove' };
        return { ok: true, account, how: 'identity' };
      }

      const retired = await deps.retiredEmails.findRetired(email);
      if (retired) return { ok: false, problem: 'sso.email_retired', retiredFor: retired.account_id, email };

      const existing = await accounts.findByEmail(email);
      if (existing && !existing.email_verified) return { ok: false, problem: 'sso.conflict' };
      // Linking an existing account by its address takes the upstream's explicit word that the
      // address is verified (OpenID Connect Core 1.0 §5.1 `email_verified`; §5.7: an address is
      // no stable identifier of its own); a missing claim is not that word.
      if (existing && identity.emailVerified !== true) return { ok: false, problem: 'sso.email_verification_unknown' };
      // An account the organization does not manage is not handed to its identity provider on the
      // upstream's word: the organization claims it first — a step its admins take in the open
      // (a preview, the account told by mail, the audit log) — and until then the account signs
      // in as it always has. Otherwise an admin could register an identity provider of their
      // own, link it to the domain and sign in as anybody on it who never was the
      // organization's (decision 0083).
      if (existing && !(await deps.managedBy(connector.organizationId, existing.id))) return { ok: false, problem: 'sso.not_managed' };
      // An admin's account is not handed to an identity provider that a fellow admin may run —
      // not even by way of a Trello migration or a closure's reopening, so before both: its owner
      // proves it first, as Keycloak's first broker login asks (decision 0086). Whatever its
      // policy: a fellow admin can change the policy it follows.
      if (existing && (await deps.ownProofNeeded(existing))) return { ok: true, account: existing, how: 'prove' };

      // A Trello member at this address migrates through this login (issue 13: not with its
      // Trello password). The company's identity provider proved the address.
      const member = (await deps.trelloMembers.findByVerifiedEmail(email)).find((m) => !m.linked_account_id);
      // A link is for good and this runs before any second step: an account with two-step
      // verification on links its Trello account from Settings → Trello after a full login.
      const migrate = member && (!existing || (existing.status === 'active' && !existing.two_step_enabled && !(await deps.trelloMembers.findByAccountId(existing.id))));
      if (member && migrate) {
        const result = await deps.linking.link({
          memberId: member.member_id,
          email,
          method: 'sso',
          ...(existing ? { existingAccountId: existing.id } : {}),
          inTransaction: (tx, account) => link(tx, connector, identity, account, email, !existing, meta),
        }, meta);
        if (result.ok) return { ok: true, account: result.account, how: 'trello' };
        // Linked meanwhile by another login: go on as without a member.
      }

      if (existing) {
        // Nothing is attached to an account that is not active: the decision point refuses it
        // (or reopens a closure within its grace period; the identity is linked next time).
        if (existing.status !== 'active') return { ok: true, account: existing, how: 'email' };
        await db.transaction((tx) => link(tx, connector, identity, existing, email, false, meta));
        return { ok: true, account: existing, how: 'email' };
      }

      try {
        const account = await db.transaction(async (tx) => {
          const created = await accounts.insertWith(tx, { id: newId('acc'), email, emailVerified: true, name: identity.name?.slice(0, 200) ?? null, passwordHash: null });
          await link(tx, connector, identity, created, email, true, meta);
          return created;
        });
        return { ok: true, account, how: 'created' };
      } catch (err) {
        // Two first logins racing: the other one created the account; use it.
        if ((err as { code?: string }).code === '23505') {
          const raced = await identities.findIdentity(connector.id, identity.subject);
          const account = raced ? await accounts.findById(raced.account_id) : undefined;
          if (account) return { ok: true, account, how: 'identity' };
        }
        throw err;
      }
    },
  };
}

export type ConnectorLogin = ReturnType<typeof createConnectorLogin>;
