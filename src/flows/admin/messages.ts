import type { Message } from '../../http/messages.ts';

/**
 * What the console says for each refusal of the organization services (codes from
 * src/organizations/). Kept beside the console: no other page shows them.
 */
const MESSAGES: Record<string, Message> = {
  'organization.name_invalid': { title: 'Check the name', text: 'Give the organization a name of 1 to 100 characters.' },
  'account.inactive': { title: 'This account can’t do that', text: 'Your account is not active. Sign in again, or contact support.' },
  'domain.empty': { title: 'Enter a domain', text: 'Enter the domain your organization’s addresses use, like example.com.' },
  'domain.malformed': { title: 'That isn’t a domain name', text: 'Enter a domain name only, like example.com — no https://, path, port or @.' },
  'domain.ip_address': { title: 'Enter a domain name, not an address', text: 'IP addresses can’t be verified. Enter the domain your organization’s addresses use.' },
  'domain.single_label': { title: 'Enter a full domain name', text: 'A domain needs at least two parts, like example.com.' },
  'domain.too_long': { title: 'That domain is too long', text: 'A domain name has at most 253 characters.' },
  'domain.public_email': { title: 'This domain can’t be claimed', text: 'It belongs to a public email provider: its addresses are people’s own, not an organization’s.' },
  'domain.taken': { title: 'Another organization holds this domain', text: 'It was verified by another organization. If yours owns it, contact support.' },
  'domain.limit': { title: 'Too many domains', text: 'An organization can have at most 50 domains. Remove one you no longer need first.' },
  'domain.manages_accounts': { title: 'This domain manages accounts', text: 'Accounts on it are managed by your organization; removing it would release them, which isn’t possible here yet.' },
  'verification.wrong_token': { title: 'We found another token', text: 'A verification record or file is there, but it holds a different token. Publish the token shown below and try again.' },
  'verification.dns_error': { title: 'The DNS lookup failed', text: 'The domain’s DNS servers didn’t answer properly. Try again in a few minutes.' },
  'verification.not_found': { title: 'We couldn’t find your token yet', text: 'Neither the TXT record nor the file is there yet. DNS changes can take a while to show; try again later.' },
  'verification.http_error': { title: 'We couldn’t read the file', text: 'The web server could not be used. See the details below, fix it and try again.' },
  'invitation.email_invalid': { title: 'Enter a valid email address', text: 'Enter the address of the person to invite, like name@example.com.' },
  'invitation.already_admin': { title: 'Already an admin', text: 'That address belongs to one of this organization’s admins.' },
  'invitation.limit': { title: 'Too many open invitations', text: 'An organization can have at most 50 open invitations. Revoke some first, or wait for them to be accepted.' },
  'invitation.not_found': { title: 'No such invitation', text: 'It was accepted, revoked or replaced meanwhile.' },
  'invitation.invalid': { title: 'This invitation can’t be used', text: 'The link is not valid: it was revoked, replaced by a newer invitation, or mistyped. Ask an admin of the organization to invite you again.' },
  'invitation.expired': { title: 'This invitation has expired', text: 'Ask an admin of the organization to invite you again.' },
  'invitation.used': { title: 'This invitation was already used', text: 'Each invitation works once. If you accepted it, the organization is in your list.' },
  'invitation.wrong_account': { title: 'Sign in with the invited address', text: 'This invitation is for another email address than the one you are signed in with. Sign out, then sign in with the invited address.' },
  'invitation.none': { title: 'No invitation to accept', text: 'Open the link from the invitation email again.' },
  'admin.not_found': { title: 'Not an admin', text: 'That person is not an admin of this organization (any more).' },
  'admin.last': { title: 'An organization needs an admin', text: 'This is the organization’s last admin. Invite another admin first.' },
};

export function adminMessage(code: string): Message {
  return MESSAGES[code] ?? { title: 'That didn’t work', text: 'Go back and try again.' };
}
