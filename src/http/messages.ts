/**
 * What people read, keyed by error code (convention 2). Codes are stable; wording can change.
 * Every message says what happened and what to do next, without revealing whether an account exists.
 */
export const messages: Record<string, { title: string; text: string }> = {
  'login.invalid_credentials': { title: 'Check your email and password', text: 'That email and password don’t match an account. Check them and try again, or reset your password.' },
  'login.account_inactive': { title: 'This account can’t sign in', text: 'This account is deactivated or closed. Contact your administrator or our support team.' },
  // The policy decision point's reasons (src/policy/decision.ts).
  'policy.account_inactive': { title: 'This account can’t sign in', text: 'This account is deactivated or closed. Contact your administrator or our support team.' },
  'policy.trello_password_retired': { title: 'Your Trello password no longer works', text: 'Your Trello account now signs in with this account. Log in with this account’s email and password — or reset the password if you don’t know it.' },
  'policy.two_step_required': { title: 'Two-step verification is required', text: 'Your account requires two-step verification, so it can’t be turned off. Lost your authenticator? Sign in with a recovery code, or ask your administrator.' },
  'policy.login_again': { title: 'Sign in again', text: 'Your account’s security settings changed since you signed in. Sign in again to continue.' },
  'policy.method_not_allowed': { title: 'This way of signing in isn’t available', text: 'Your account can’t use this way of signing in. Use another one, or ask your administrator.' },
  'login.invalid_email': { title: 'Enter a valid email address', text: 'Enter the email address you use for your account, like name@example.com.' },
  'login.password_required': { title: 'Enter your password', text: 'Enter your password to continue.' },
  'login.second_step_expired': { title: 'Start again', text: 'Your sign-in waited too long for the second step. Enter your email and password again.' },
  'two_step.code_invalid': { title: 'That code isn’t right', text: 'Enter the 6-digit code your authenticator app shows now, or one of your unused recovery codes.' },
  'two_step.code_used': { title: 'That code was already used', text: 'Each code works once. Wait for your authenticator app to show the next one (a new code comes every 30 seconds), then enter it.' },
  'two_step.enrolment_code_invalid': { title: 'That code isn’t right', text: 'Enter the 6-digit code your authenticator app shows now for this account. Check that the app’s clock is right.' },
  'two_step.already_enabled': { title: 'Two-step verification is already on', text: 'Turn it off first if you want to set it up with another app.' },
  'two_step.enrolment_expired': { title: 'Start again', text: 'Setting up two-step verification took too long, or was started in another browser. Start again and scan the new code.' },
  'two_step.required': { title: 'Two-step verification is required', text: 'Your account requires two-step verification, so it can’t be turned off. Lost your authenticator? Sign in with a recovery code, or ask your administrator.' },
  'two_step.not_enabled': { title: 'Two-step verification is off', text: 'There is nothing to turn off or verify.' },
  'throttle.wait': { title: 'Too many attempts', text: 'For your security, wait {wait} before trying again.' },
  'trello.password_retired': { title: 'Your Trello password no longer works', text: 'Your Trello account now signs in with this account. Log in with this account’s email and password — or reset the password if you don’t know it.' },
  'trello.already_linked': { title: 'This Trello account is already linked', text: 'It was moved to an account earlier, and that can’t be undone. Log in with that account’s email and password.' },
  'trello.email_not_theirs': { title: 'Choose one of your addresses', text: 'Pick one of the verified addresses listed, or use another address and confirm it with a code.' },
  'trello.email_taken': { title: 'This address already has an account', text: 'Prove it is yours with that account’s password, or pick another address.' },
  'trello.email_retired': { title: 'This address can’t be used', text: 'It was retired from another account. Pick another address.' },
  'trello.account_unusable': { title: 'That account can’t be used', text: 'The account is closed or deactivated. Pick another address.' },
  'trello.unknown_member': { title: 'Unknown Trello account', text: 'No Trello account matches. Check what you entered.' },
  // A company's SAML identity provider (src/federation/saml/refusal.ts): the reason goes to the log, never to the page.
  'sso.saml_invalid': { title: 'Your company’s sign-in didn’t complete', text: 'The answer from your company’s sign-in could not be accepted. Start again from the login page; if it keeps happening, tell your administrator.' },
  'sso.saml_expired': { title: 'Your company’s sign-in took too long', text: 'The answer from your company’s sign-in has expired. Start again from the login page.' },
  'sso.saml_replay': { title: 'This sign-in was already used', text: 'Each answer from your company’s sign-in works once. Start again from the login page.' },
  'sso.saml_unsolicited': { title: 'Start from the login page', text: 'Signing in from your company’s portal isn’t turned on for this application. Start from the login page instead.' },
  'sso.saml_wrong_request': { title: 'Start again', text: 'This answer belongs to another sign-in. Start again from the login page.' },
  'sso.saml_idp_error': { title: 'Your company’s sign-in didn’t complete', text: 'Your company’s sign-in refused or cancelled the request. Start again from the login page, or ask your administrator.' },
  'sso.saml_metadata_invalid': { title: 'This metadata can’t be used', text: 'Upload the SAML 2.0 metadata XML of your identity provider.' },
  'google.unavailable': { title: 'Google can’t be reached right now', text: 'Try again in a moment, or log in with your email and password.' },
  'google.cancelled': { title: 'Google login was cancelled', text: 'Nothing changed. Log in with Google again, or with your email and password.' },
  'google.not_fresh': { title: 'Sign in to Google again', text: 'To confirm it’s you, Google must ask you to sign in now, and it didn’t. Start again from the login page, or use your password.' },
  'google.not_recent': { title: 'Sign in to Google again', text: 'The app asked for a recent sign-in, and Google answered from an older one. Start again from the login page, or use your password.' },
  'google.failed': { title: 'Google login didn’t complete', text: 'The answer from Google could not be accepted. Start again from the login page.' },
  'google.email_unverified': { title: 'Google hasn’t verified this address', text: 'Verify the address with Google first, or log in with your email and password.' },
  'google.conflict': { title: 'Log in with your password to continue', text: 'Your Trello account’s addresses already belong to another account. Log in with that account’s email and password to link them.' },
  'google.two_step_first': { title: 'Log in with your password and code first', text: 'Your account uses two-step verification. Log in with your email, password and code, then link your Trello account from Settings → Trello.' },
  'google.email_retired': { title: 'Check your email', text: 'This Google address was removed from its account when the account moved from Trello. We sent a message to every address of that account saying which address to log in with.' },
  // A company's identity provider (src/flows/login/connector.ts, docs/flows/sso.md).
  'sso.unknown': { title: 'Your company’s sign-in isn’t available', text: 'This sign-in is turned off or no longer exists. Ask your administrator, then start again from the login page.' },
  'sso.unavailable': { title: 'Your company’s sign-in can’t be reached right now', text: 'Nothing changed. Try again in a moment; if it keeps happening, tell your administrator.' },
  'sso.cancelled': { title: 'Sign-in was cancelled', text: 'Nothing changed. Start again from the login page when you’re ready.' },
  'sso.failed': { title: 'Your company’s sign-in didn’t complete', text: 'The answer from your company’s sign-in could not be accepted. Start again from the login page; if it keeps happening, tell your administrator.' },
  'sso.not_fresh': { title: 'Sign in to your company again', text: 'To confirm it’s you, your company’s sign-in must ask you to sign in now, and it didn’t. Start again from the login page.' },
  'sso.not_recent': { title: 'Sign in to your company again', text: 'The app asked for a recent sign-in, and your company’s sign-in answered from an older one. Start again from the login page.' },
  'sso.not_managed': { title: 'Log in with your password', text: 'An account with this address already exists, and your company doesn’t manage it yet, so your company’s sign-in can’t be used for it. Log in with its password, or ask your administrator to add the account to your organization first. Nothing was changed.' },
  'sso.email_missing': { title: 'Your company’s sign-in sent no email address', text: 'We need your work address to find your account. Tell your administrator: the sign-in must release the email claim or attribute.' },
  'sso.email_unverified': { title: 'Your address isn’t verified', text: 'Your company’s sign-in says your email address isn’t verified yet. Ask your administrator.' },
  'sso.email_verification_unknown': { title: 'Your company’s sign-in didn’t confirm your address', text: 'An account with this address already exists, and your company’s sign-in didn’t say the address is verified, so it can’t sign in to that account. Nothing was changed. Tell your administrator: the sign-in must send email_verified.' },
  'sso.domain_not_linked': { title: 'This address can’t sign in here', text: 'Your company’s sign-in gave an address on a domain it doesn’t answer for. Ask your administrator to link the domain, or sign in with the right account.' },
  'sso.conflict': { title: 'Sign in with your password first', text: 'An account with this address exists, but its address was never verified. Ask your administrator, or sign in with that account’s password.' },
  'sso.email_retired': { title: 'Check your email', text: 'This address was removed from its account when the account moved from Trello. We sent a message to every address of that account saying which address to log in with.' },
  'trello.credentials': { title: 'Check your Trello details', text: 'That Trello username or address and password don’t match a Trello account that can still be linked.' },
  'trello.account_has_member': { title: 'A Trello account is already linked', text: 'Each account is linked to one Trello account.' },
  'trello.no_free_address': { title: 'Confirm another address', text: 'Your Trello addresses already belong to accounts here that have a Trello account linked, or were removed from one. Use another address you can read: we send it a code.' },
  'trello.no_verified_address': { title: 'Confirm an address first', text: 'None of your Trello addresses was verified. Use an address you can read: we send it a code.' },
  'trello.review_expired': { title: 'Start again', text: 'The review took too long. Enter your Trello details again.' },
  'trello.link_irreversible': { title: 'Linking can’t be undone', text: 'The Trello account moved to this account for good. Its boards stay with it.' },
  'trello.not_linked': { title: 'No Trello account is linked', text: 'There is no link to undo. A Trello account can be linked from Settings → Trello; that can’t be undone.' },
  'login.busy': { title: 'We’re busy right now', text: 'Many people are signing in right now. Wait a few seconds and try again.' },
  'password.too_short': { title: 'Choose a longer password', text: 'Use at least the number of characters shown below. A phrase of a few words works well.' },
  'password.too_long': { title: 'That password is too long', text: 'Use at most 1024 characters.' },
  'password.common': { title: 'That password is too common', text: 'It appears in lists of passwords attackers try first. Choose something less predictable.' },
  'password.contains_email': { title: 'Don’t use your email address', text: 'Your password must not contain your email address or the part before the @.' },
  'password.equals_name': { title: 'Don’t use your name', text: 'Your password must not be your name.' },
  'signup.code_invalid': { title: 'That code isn’t right', text: 'Check the 6-digit code in the email we sent and try again.' },
  'signup.code_locked': { title: 'Too many wrong codes', text: 'For your security this code no longer works. Ask for a new one.' },
  'signup.expired': { title: 'This sign-up has expired', text: 'The code is no longer valid. Ask for a new one to continue.' },
  'signup.email_taken': { title: 'This address already has an account', text: 'Someone created an account with this address meanwhile. Log in instead, or reset the password.' },
  'signup.name_required': { title: 'Enter your name', text: 'Tell us what to call you. You can change it later.' },
  'signup.name_invalid': { title: 'Check your name', text: 'Use at most 200 characters, with something visible and no invisible formatting characters (zero-width spaces, direction overrides).' },
  'password.current_wrong': { title: 'Your current password is not right', text: 'Enter the password you use now. Forgot it? Log out and reset it.' },
  'reauth.required': { title: 'Confirm it’s you', text: 'This change needs a recent login. Log in again, or type your current password where the form asks for it, then try again.' },
  'password.same': { title: 'Choose a different password', text: 'The new password is the same as the current one.' },
  'account.sign_in_failed': { title: 'We couldn’t sign you in', text: 'Signing in to your account settings did not complete. Try again.' },
  'email.same': { title: 'That is your current address', text: 'Enter the new address you want to use.' },
  'email.link_invalid': { title: 'This link can’t be used', text: 'The confirmation link has expired, was already used, or was replaced by a newer request. Your address has not changed.' },
  'sso.link_needs_password': { title: 'Sign in as you usually do', text: 'Your company’s sign-in can’t be linked to this account on your company’s word alone. Sign in to it the way you usually do.' },
  'email.undo_invalid': { title: 'This link can’t be used', text: 'The link has expired or was already used. If someone else has your account, reset your password from the login page, or ask the person who runs your organization’s accounts for help.' },
  'email.undo_taken': { title: 'Your old address has another account now', text: 'The change can’t be undone: another account uses that address. Nothing was changed.' },
  'account.managed': { title: 'Your organization manages this account', text: 'Ask your organization’s admin to change this.' },
  'api.invalid_paging': { title: 'Check the paging parameters', text: 'limit must be a whole number from 1 to 100, and cursor the "next" value of the previous page.' },
  'api.forbidden': { title: 'Not allowed', text: 'This client may not call this API.' },
  'api.trello_query': { title: 'Ask about one member', text: 'Give exactly one of member_id or email (a valid address).' },
  'api.unauthenticated': { title: 'Sign in first', text: 'This needs a signed-in session or a valid access token.' },
  'api.first_party_only': { title: 'Not for this application', text: 'Only our own products may read the whole profile. Other applications get what the person agreed to share, from the userinfo endpoint.' },
  'profile.invalid': { title: 'Check your profile', text: 'A field is too long, holds invisible formatting characters (zero-width spaces, direction overrides) or only blanks, or the time zone is not one we know (use a name like Europe/Paris).' },
  'avatar.invalid': { title: 'That picture can’t be used', text: 'Upload a JPEG, PNG, WebP or GIF image.' },
  'avatar.too_large': { title: 'That picture is too large', text: 'Upload an image of at most 5 MB.' },
  'avatar.missing': { title: 'Choose a picture first', text: 'Pick a JPEG, PNG, WebP or GIF image of at most 5 MB, then press Upload picture.' },
  'request.csrf': { title: 'This form has expired', text: 'For your security the form could not be accepted. Go back, reload the page and try again.' },
  'request.invalid_body': { title: 'We couldn’t read that request', text: 'The request was malformed. Go back and try again.' },
  'request.too_large': { title: 'That was too much', text: 'The request was larger than we accept. Shorten what you entered and try again.' },
  'request.field_too_long': { title: 'That was too long', text: 'Something you entered is longer than we accept. Go back, shorten it and try again.' },
  'request.invalid_characters': { title: 'We couldn’t read that request', text: 'It contained characters we don’t accept. Go back and try again.' },
  'request.unsupported_encoding': { title: 'We couldn’t read that request', text: 'The request was sent in an encoding we don’t accept. Send it uncompressed.' },
  'request.invalid_host': { title: 'We couldn’t read that request', text: 'The address it was sent to is not valid.' },
  'request.concurrent_change': { title: 'Someone else changed this at the same moment', text: 'Nothing of your change was saved. Go back and try again.' },
  'request.method_not_allowed': { title: 'That can’t be done here', text: 'This address doesn’t accept that kind of request. Go back to the page you came from and try again.' },
  'request.method_not_implemented': { title: 'That can’t be done here', text: 'We don’t take that kind of request at all. Go back to the page you came from and try again.' },
  'request.not_found': { title: 'Page not found', text: 'There is nothing at this address. Check the link, or return to the application you came from.' },
  'interaction.expired': { title: 'This sign-in has ended', text: 'This sign-in page has expired or was already used. Return to the application and start signing in again.' },
  'server.error': { title: 'Something went wrong on our side', text: 'We couldn’t complete your request. Try again in a moment; if it keeps happening, contact support with the reference below.' },
  'server.unavailable': { title: 'We’ll be right back', text: 'Lanyard can’t reach its data store just now. Wait a moment and try again.' },
  'oidc.temporarily_unavailable': { title: 'We’ll be right back', text: 'Lanyard can’t reach its data store just now. Wait a moment, then return to the application and try again.' },
  'oidc.access_denied': { title: 'Access was not granted', text: 'The request was cancelled. Return to the application to try again.' },
  'oidc.invalid_request': { title: 'The application sent an invalid request', text: 'The application that sent you here made a request we can’t accept. Return to it and try again; if it keeps happening, tell its support team.' },
  'oidc.invalid_client': { title: 'Unknown application', text: 'The application that sent you here is not registered with us. Tell its support team.' },
  'oidc.invalid_redirect_uri': { title: 'The application sent you to the wrong place', text: 'The application’s return address is not registered with us, so we stopped here for your safety. Tell its support team.' },
  'oidc.session_not_found': { title: 'Your sign-in session was not found', text: 'Your sign-in expired, was already completed, or cookies are blocked. Return to the application and start again.' },
  'oidc.default': { title: 'We couldn’t complete the sign-in', text: 'Return to the application and try again.' },
};

export interface Message { title: string; text: string }

export function messageFor(code: string, params: Record<string, string> = {}): Message {
  const message = messages[code] ?? messages['server.error']!;
  return { title: message.title, text: message.text.replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole) };
}

/** A page's error: a message code, or a message already filled in (a wait). */
export type PageError = string | Message;

export const errorMessage = (error: PageError | undefined): Message | undefined =>
  error === undefined ? undefined : typeof error === 'string' ? messageFor(error) : error;

/** "2 minutes", "45 seconds": how long to wait, for people. */
export function describeWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** The "wait N minutes" message; sets Retry-After (RFC 9110 §10.2.3) on the 429 response. */
export function waitMessage(ctx: { set(field: string, value: string): void; status: number }, seconds: number): Message {
  ctx.status = 429;
  ctx.set('Retry-After', String(seconds));
  return messageFor('throttle.wait', { wait: describeWait(seconds) });
}
