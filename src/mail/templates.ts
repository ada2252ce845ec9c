import type { Views } from '../http/views.ts';
import { unlinked } from './unlinked.ts';

/**
 * Email templates: `views/email/<name>.txt.eta` and `<name>.htm.eta`, rendered with the product name
 * and the issuer's URL so every link points at this deployment. Subjects live here, beside the
 * list of templates, so a missing one is a type error rather than an empty subject line.
 *
 * A subject carries no secret: it is kept in `mail_outbox.subject` after the body is erased,
 * logged by the development mailbox and shown in mail clients' notifications. Codes and links
 * belong in the sealed body only, so subjects are rendered with the recipient's address alone.
 */
export const SUBJECTS = {
  'verify-email': 'Your Lanyard verification code',
  'already-registered': 'You already have a Lanyard account',
  // An address change to an address that has an account (or is retired, so reserved for one).
  'address-in-use': 'This address already has a Lanyard account',
  'password-reset': 'Reset your Lanyard password',
  'password-changed': 'Your Lanyard password was changed',
  'account-closed': 'Your Lanyard account was closed',
  'account-reopened': 'Your Lanyard account was reopened',
  'email-change-verify': 'Confirm your new Lanyard email address',
  'email-changed': 'Your Lanyard email address was changed',
  'email-change-undone': 'Your Lanyard email address is back: set a new password',
  'two-step-enabled': 'Two-step verification was turned on for your Lanyard account',
  'two-step-disabled': 'Two-step verification was turned off for your Lanyard account',
  'recovery-code-used': 'A recovery code was used to sign in to your Lanyard account',
  'trello-migrated': 'Your Trello account now signs in with Lanyard',
  'trello-verify-email': 'Your Lanyard verification code',
  'retired-email-used': 'Log in to Lanyard with <%~ it.email %>',
  'organization-domain-failing': 'A verified domain of your Lanyard organization failed its check',
  'account-managed': 'Your organization now manages your Lanyard account',
  'account-released': 'Your organization no longer manages your Lanyard account',
  'managed-email-changed': 'Your organization changed your Lanyard email address',
  // The organization's name stays out of the subject: an admin chose it, and it is not ours to put in a notification.
  'organization-invitation': 'You’re invited to be an admin of an organization on Lanyard',
  test: 'Lanyard test message',
} as const;

export type MailTemplate = keyof typeof SUBJECTS;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

export function createMailRenderer(views: Views, issuer: string) {
  return (template: MailTemplate, data: Record<string, unknown>): RenderedMail => {
    // `unlinked` for text an admin chose (src/mail/unlinked.ts): shown, never turned into a link.
    const it = { ...data, issuer, unlinked };
    return {
      subject: views.renderString(SUBJECTS[template], { email: data.email, issuer }).trim(),
      text: views.render(`email/${template}.txt.eta`, it),
      html: views.render(`email/${template}.htm.eta`, it),
    };
  };
}

export type MailRenderer = ReturnType<typeof createMailRenderer>;
