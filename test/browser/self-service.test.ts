import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { resetDatabase } from '../helpers/db.ts';
import { createAccount, PASSWORD } from '../helpers/factories.ts';
import { launchChromium } from '../helpers/browser.ts';
import { startSmtp, linkIn, type TestSmtp } from '../helpers/smtp.ts';
import { ONE_SLOW_HASH, submitWhileHashingFull } from '../helpers/busy.ts';

/** The self-service pages in real Chromium: reset, profile, picture, email, sessions, apps, closing. */
describe('browser: self-service pages', function () {
  this.timeout(60_000);
  let browser: Browser;
  let server: TestServer;
  let smtp: TestSmtp;
  let context: BrowserContext;

  before(async () => { browser = await launchChromium(); });
  after(async () => browser?.close());
  beforeEach(async () => {
    await resetDatabase();
    smtp = await startSmtp();
    server = await startTestServer({ overrides: { smtpUrl: smtp.url } });
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
    await server.close();
    await smtp.close();
  });

  const deliver = async () => {
    await server.registry.background.idle();
    await server.registry.mail.delivery.deliverDue();
  };

  async function signInToSettings(page: Page, email: string, password = PASSWORD) {
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${server.url}/account`);
  }

  it('resets a forgotten password from the email link', async () => {
    const account = await createAccount(server.registry);
    const page = await context.newPage();
    await page.goto(`${server.url}/password/forgot`);
    await page.getByLabel('Email').fill(account.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    expect(await page.getByRole('heading', { name: 'Check your email' }).isVisible()).to.equal(true);
    await deliver();
    await page.goto(linkIn(await smtp.lastTo(account.email), `${server.url}/password/reset?token=`));
    await page.getByLabel('New password').fill('password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('That password is too common');
    await page.getByLabel('New password').fill('reset in a real browser');
    await page.getByRole('button', { name: 'Set new password' }).click();
    expect(await page.getByRole('heading', { name: 'Your password was changed' }).isVisible()).to.equal(true);
    await signInToSettings(await context.newPage(), account.email, 'reset in a real browser');
  });

  it('keeps the new-password form when the hashing is full, and the same form changes the password once there is room (decision 0063)', async () => {
    // A server of its own whose hashing admits one hash at a time, a slow one (about a second):
    // while the test's own hash runs, the queue is full.
    const busyServer = await startTestServer({ overrides: { smtpUrl: smtp.url, ...ONE_SLOW_HASH } });
    try {
      const account = await createAccount(busyServer.registry);
      const page = await context.newPage();
      await page.goto(`${busyServer.url}/password/forgot`);
      await page.getByLabel('Email').fill(account.email);
      await page.getByRole('button', { name: 'Send reset link' }).click();
      await page.getByRole('heading', { name: 'Check your email' }).waitFor();
      await busyServer.registry.background.idle();
      await busyServer.registry.mail.delivery.deliverDue();
      await page.goto(linkIn(await smtp.lastTo(account.email), `${busyServer.url}/password/reset?token=`));

      await page.getByLabel('New password').fill('changed while it was busy');
      await submitWhileHashingFull(busyServer.registry, page, '/password/reset', () => page.getByRole('button', { name: 'Set new password' }).click());
      expect(await page.getByLabel('New password').inputValue(), 'the password is not echoed back').to.equal('');

      // The link was not spent: the same form, sent again, changes the password.
      await page.getByLabel('New password').fill('changed while it was busy');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('heading', { name: 'Your password was changed' }).waitFor();
      expect((await busyServer.registry.accounts.authenticate(account.email, 'changed while it was busy')).ok).to.equal(true);
    } finally {
      await busyServer.close();
    }
  });

  it('edits the profile and its visibility, and uploads a picture', async () => {
    const account = await createAccount(server.registry, { name: 'Ada Lovelace' });
    const page = await context.newPage();
    await signInToSettings(page, account.email);
    await page.getByRole('link', { name: 'Profile' }).click();
    await page.getByRole('textbox', { name: 'Job title' }).fill('Analyst');
    await page.locator('#v-job_title').selectOption('anyone');
    await page.getByRole('button', { name: 'Save profile' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Saved.');
    const publicView = await (await fetch(`${server.url}/api/profiles/${account.id}`)).json();
    expect(publicView).to.include({ job_title: 'Analyst' });

    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#cc3366' } }).png().toBuffer();
    await page.getByLabel(/Upload a picture/).setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png });
    await page.getByRole('button', { name: 'Upload picture' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Your picture was updated');
    const img = page.getByRole('img', { name: 'Your profile picture' });
    expect(await img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth)).to.equal(256);
    await page.screenshot({ path: '/tmp/lanyard-profile.png', fullPage: true });
  });

  it('changes the email, lists sessions and apps, and closes the account', async () => {
    const account = await createAccount(server.registry);
    const page = await context.newPage();
    await signInToSettings(page, account.email);

    await page.getByRole('link', { name: 'Email' }).click();
    await page.getByLabel('New email address').fill('moved@example.com');
    // Just logged in: a recent login confirms the change, no password is asked (privileged session).
    expect(await page.getByLabel('Your password').count()).to.equal(0);
    await page.getByRole('button', { name: 'Send confirmation link' }).click();
    expect(await page.getByRole('status').textContent()).to.contain('Check moved@example.com');
    await deliver();
    await page.goto(linkIn(await smtp.lastTo('moved@example.com'), `${server.url}/account/email/verify?token=`));
    expect(await page.getByRole('heading', { name: 'Confirm your new email address' }).isVisible()).to.equal(true);
    await page.getByRole('button', { name: 'Change my address' }).click();
    await page.getByRole('heading', { name: 'Your email address was changed' }).waitFor();
    // A reload says it again (the outcome's page is a GET), not that the spent link changed nothing.
    await page.reload();
    await page.getByRole('heading', { name: 'Your email address was changed' }).waitFor();

    await page.goto(`${server.url}/account/sessions`);
    expect(await page.getByText('This browser').isVisible()).to.equal(true);
    await page.goto(`${server.url}/account/apps`);
    expect(await page.getByRole('heading', { name: 'Connected apps' }).isVisible()).to.equal(true);

    await page.goto(`${server.url}/account/close`);
    await page.getByRole('button', { name: 'Close my account' }).click();
    expect(await page.getByRole('heading', { name: 'Your account is closed' }).isVisible()).to.equal(true);
    expect((await server.registry.accounts.findById(account.id))?.status).to.equal('closed');
  });

  it('undoes an email change from the old address’s link, in a browser signed in to nothing (decision 0085)', async () => {
    const account = await createAccount(server.registry, { email: 'rightful@example.com' });
    const intruder = await context.newPage();
    await signInToSettings(intruder, account.email);
    await intruder.getByRole('link', { name: 'Email' }).click();
    await intruder.getByLabel('New email address').fill('taker@example.com');
    await intruder.getByRole('button', { name: 'Send confirmation link' }).click();
    await deliver();
    await intruder.goto(linkIn(await smtp.lastTo('taker@example.com'), `${server.url}/account/email/verify?token=`));
    await intruder.getByRole('button', { name: 'Change my address' }).click();
    await intruder.getByRole('heading', { name: 'Your email address was changed' }).waitFor();

    await deliver();
    const owner = await browser.newContext();
    try {
      const page = await owner.newPage();
      await page.goto(linkIn(await smtp.lastTo('rightful@example.com'), `${server.url}/account/email/undo?token=`));
      await page.getByRole('heading', { name: 'Undo the change of your email address' }).waitFor();
      await page.getByRole('button', { name: 'Undo the change' }).click();
      await page.getByRole('heading', { name: 'Your email address is back' }).waitFor();
      await page.reload();
      await page.getByRole('heading', { name: 'Your email address is back' }).waitFor();
      expect((await server.registry.accounts.findById(account.id))?.email).to.equal('rightful@example.com');
    } finally {
      await owner.close();
    }
    // The intruder's browser is signed out.
    await intruder.goto(`${server.url}/account/email`);
    expect(new URL(intruder.url()).pathname).not.to.equal('/account/email');
  });
});
