import { describeWait, type Message } from '../../http/messages.ts';

/**
 * What the console says for each refusal of the organization services (codes from
 * src/organizations/). Kept beside the console: no other page shows them.
 */
const MESSAGES: Record<string, Message> = {
  'organization.name_invalid': { title: 'Check the name', text: 'Give the organization a name of 1 to 100 characters, with something visible and no invisible formatting characters (zero-width spaces, direction overrides).' },
  'organization.confirm_name': { title: 'Type the name to confirm', text: 'To delete the organization, type its name exactly as shown.' },
  'organization.manages_accounts': { title: 'This organization manages accounts', text: 'Deleting it releases them: confirm that below.' },
  'account.inactive': { title: 'This account can’t do that', text: 'Your account is not active. Sign in again, or contact support.' },
  'domain.empty': { title: 'Enter a domain', text: 'Enter the domain your organization’s addresses use, like example.com.' },
  'domain.malformed': { title: 'That isn’t a domain name', text: 'Enter a domain name only, like example.com — no https://, path, port or @.' },
  'domain.ip_address': { title: 'Enter a domain name, not an address', text: 'IP addresses can’t be verified. Enter the domain your organization’s addresses use.' },
  'domain.single_label': { title: 'Enter a full domain name', text: 'A domain needs at least two parts, like example.com.' },
  'domain.too_long': { title: 'That domain is too long', text: 'A domain name has at most 253 characters.' },
  'domain.public_email': { title: 'This domain can’t be claimed', text: 'It belongs to a public email provider: its addresses are people’s own, not an organization’s.' },
  'domain.public_suffix': { title: 'This domain can’t be claimed', text: 'It is a public suffix (like co.uk or github.io): anyone can register names under it, so no organization can own it. Enter your own domain, like example.co.uk.' },
  'domain.taken': { title: 'Another organization holds this domain', text: 'It was verified by another organization. If yours owns it, contact support.' },
  'domain.limit': { title: 'Too many domains', text: 'An organization can have at most 50 domains. Remove one you no longer need first.' },
  'domain.manages_accounts': { title: 'This domain manages accounts', text: 'Accounts on it are managed by your organization: removing the domain releases them. Confirm that below.' },
  'release.deactivated_accounts': { title: 'Some of these accounts are deactivated', text: 'Released, nobody could reactivate them: not their owners, not your organization. Reactivate or delete them first.' },
  'verification.wrong_token': { title: 'We found another token', text: 'A verification record or file is there, but it holds a different token. Publish the token shown below and try again.' },
  'verification.dns_error': { title: 'The DNS lookup failed', text: 'The domain’s DNS servers didn’t answer properly. Try again in a few minutes.' },
  'verification.not_found': { title: 'We couldn’t find your token yet', text: 'Neither the TXT record nor the file is there yet. DNS changes can take a while to show; try again later.' },
  'verification.http_error': { title: 'We couldn’t read the file', text: 'The web server could not be used. See the details below, fix it and try again.' },
  'invitation.email_invalid': { title: 'Enter a valid email address', text: 'Enter the address of the person to invite, like name@example.com.' },
  'invitation.already_admin': { title: 'Already an admin', text: 'That address belongs to one of this organization’s admins.' },
  'invitation.limit': { title: 'Too many open invitations', text: 'An organization can have at most 50 open invitations. Revoke some first, or wait for them to be accepted.' },
  'invitation.throttled': { title: 'Too many invitations', text: 'Invitation emails are limited per address and per admin, so nobody can be flooded with them. Wait {wait}, then invite again.' },
  'verification.throttled': { title: 'Too many checks', text: 'Each check looks up the domain’s DNS and web server, so checks are limited per domain and per admin. Wait {wait}, then verify again.' },
  'organization.throttled': { title: 'Too many new organizations', text: 'Creating organizations is limited per account. Wait {wait}, then try again.' },
  'organization.limit': { title: 'You can’t create more organizations', text: 'You are an admin of as many organizations as one account may create. Leave one you no longer need, or ask another admin to create it.' },
  'invitation.not_found': { title: 'No such invitation', text: 'It was accepted, revoked or replaced meanwhile.' },
  'invitation.invalid': { title: 'This invitation can’t be used', text: 'The link is not valid: it was revoked, replaced by a newer invitation, or mistyped. Ask an admin of the organization to invite you again.' },
  'invitation.expired': { title: 'This invitation has expired', text: 'Ask an admin of the organization to invite you again.' },
  'invitation.used': { title: 'This invitation was already used', text: 'Each invitation works once. If you accepted it, the organization is in your list.' },
  'invitation.wrong_account': { title: 'Sign in with the invited address', text: 'This invitation is for another email address than the one you are signed in with. Sign out, then sign in with the invited address.' },
  'invitation.none': { title: 'No invitation to accept', text: 'Open the link from the invitation email again.' },
  'admin.not_found': { title: 'Not an admin', text: 'That person is not an admin of this organization (any more).' },
  'admin.last': { title: 'An organization needs an admin', text: 'This is the organization’s last admin. Invite another admin first.' },
  'domain.not_verified': { title: 'Verify the domain first', text: 'Only a verified domain can claim accounts: publish its token and verify it on the Domains page.' },
  'domain.claims_frozen': { title: 'Claims are frozen for this domain', text: 'Its last re-check failed, so it claims no new accounts until it verifies again. Accounts it already manages stay managed. Fix the TXT record or file, then verify it on the Domains page.' },
  'list.invalid': { title: 'Check the search', text: 'Search by the start of an address or a name (at most 320 characters), and pick a status from the list.' },
  'account.admin': { title: 'This account is an admin here', text: 'An admin’s account can’t be deactivated, deleted or moved to another address from the console. Remove them as an admin first (Admins page); at least one active admin always remains.' },
  'account.self': { title: 'This is your own account', text: 'Admins can’t edit, deactivate or delete their own account here. Another admin of the organization can; your own settings are under Your account.' },
  'account.state': { title: 'The account’s state doesn’t allow that', text: 'It changed meanwhile, or that action doesn’t apply to it now. Its page shows what you can do.' },
  'account.name_invalid': { title: 'Check the name', text: 'A name has at most 200 characters, something visible, and no control or invisible formatting characters (zero-width spaces, direction overrides). Leave it empty to clear it.' },
  'login.invalid_email': { title: 'Enter a valid email address', text: 'Enter the new address, like name@example.com.' },
  'email.same': { title: 'That is the current address', text: 'Enter another address to move the account to.' },
  'email.domain_not_verified': { title: 'That address is not on a verified domain of this organization', text: 'A managed account’s address can only move to another domain your organization has verified (see the Domains page). Addresses elsewhere are the person’s own to choose.' },
  'signup.email_taken': { title: 'That address is taken', text: 'Another account uses this address, or it is reserved for one. Choose another.' },
  'bulk.action': { title: 'Choose an action', text: 'Select accounts on the list, then press Deactivate, Reactivate or Delete.' },
  'bulk.none': { title: 'No account selected', text: 'Tick the accounts on the list first, then choose the action.' },
  'bulk.too_many': { title: 'Too many accounts at once', text: 'A bulk action takes at most 100 accounts. Select fewer, or narrow the list with the search or the status filter, and repeat.' },
  'bulk.none_eligible': { title: 'Nothing to do', text: 'None of the selected accounts can take this action now (see why below).' },
};

export function adminMessage(code: string): Message {
  return MESSAGES[code] ?? { title: 'That didn’t work', text: 'Go back and try again.' };
}

/**
 * A throttled action's message with its wait; the answer becomes 429 with Retry-After (RFC 6585
 * §4, RFC 9110 §10.2.3), like the login's waits.
 */
export function adminWaitMessage(ctx: { set(field: string, value: string): void; status: number }, code: string, seconds: number): Message {
  const message = adminMessage(code);
  ctx.status = 429;
  ctx.set('Retry-After', String(seconds));
  return { title: message.title, text: message.text.replace('{wait}', describeWait(seconds)) };
}
