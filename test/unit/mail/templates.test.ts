import { expect } from 'chai';
import { join } from 'node:path';
import { createViews } from '../../../src/http/views.ts';
import { rootDir } from '../../../src/registry.ts';
import { createMailRenderer, SUBJECTS, type MailTemplate } from '../../../src/mail/templates.ts';

/** Subjects outlive the sealed body (mail_outbox.subject) and reach logs and notifications. */
describe('mail templates', () => {
  const render = createMailRenderer(createViews(join(rootDir, 'views'), { cache: false, productName: 'Lanyard' }), 'https://id.example.com');
  const secrets = { code: '493817', link: 'https://id.example.com/password/reset?token=SECRET-TOKEN-1', resetLink: 'https://id.example.com/reset?token=SECRET-TOKEN-2', token: 'SECRET-TOKEN-3' };

  for (const template of Object.keys(SUBJECTS) as MailTemplate[]) {
    it(`puts no code or link in the subject of ${template}`, () => {
      const mail = render(template, { ...secrets, email: 'ada@example.com', name: 'Ada', minutes: 15, days: 7, tried: 'old@example.com', when: 'now', retired: [], username: 'ada' });
      expect(mail.subject).to.have.length.greaterThan(0);
      for (const secret of Object.values(secrets)) expect(mail.subject).not.to.contain(secret);
      expect(mail.subject).not.to.match(/\d{6}|https?:/);
    });
  }

  it('still puts the code in the body of the verification messages', () => {
    expect(render('verify-email', { ...secrets, email: 'ada@example.com', minutes: 15 }).text).to.contain(secrets.code);
  });
});

describe('mail templates: text an admin chose', () => {
  const render = createMailRenderer(createViews(join(rootDir, 'views'), { cache: false, productName: 'Lanyard' }), 'https://id.example.com');

  it('never turns an organization or inviter name into a link in the invitation, in HTML or text', () => {
    const mail = render('organization-invitation', {
      email: 'victim@example.com',
      organization: 'Reset at https://evil.example/x or www.evil.example <b>now</b>',
      inviter: 'IT desk evil.example (mallory@evil.example)',
      link: 'https://id.example.com/admin/invitation?token=T',
      expires: 'soon',
    });
    for (const body of [mail.text, mail.html]) {
      // No URL, host name or address of the attacker's survives whole, so no client links it.
      expect(body).not.to.match(/https?:\/\/evil|www\.evil|evil\.example|@evil/);
      expect(body).to.contain('evil.\u200Cexample');
    }
    // Escaped in HTML, and the only link is ours.
    expect(mail.html).to.contain('&lt;b&gt;now').and.not.to.contain('<b>now');
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).to.deep.equal(['https://id.example.com/admin/invitation?token=T', 'https://id.example.com']);
  });
});
