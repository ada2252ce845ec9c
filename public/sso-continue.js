// The SAML assertion consumer's interim page (src/flows/login/connector.ts): post the IdP's
// answer on to our own origin at once. Without JavaScript the page's button does the same.
document.getElementById('sso-continue')?.submit();
