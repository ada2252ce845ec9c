import { expect } from 'chai';
import { parseIdpMetadata, SamlMetadataError } from '../../../src/federation/saml/idp-metadata.ts';
import { idpCertificateWarnings, parseSamlConnectorConfig } from '../../../src/federation/saml/config.ts';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';

const one = generateSpKeys(new Date());
const two = generateSpKeys(new Date());
const body = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');

function metadata(options: { certs?: string[]; binding?: string; entityId?: string; use?: string; protocol?: string } = {}): string {
  const certs = options.certs ?? [one.certificatePem];
  return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${options.entityId ?? 'https://idp.example.com/saml'}">
  <md:IDPSSODescriptor protocolSupportEnumeration="${options.protocol ?? 'urn:oasis:names:tc:SAML:2.0:protocol'}" WantAuthnRequestsSigned="true">
    ${certs.map((c) => `<md:KeyDescriptor${options.use === undefined ? ' use="signing"' : options.use ? ` use="${options.use}"` : ''}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
      ${body(c).match(/.{1,64}/g)!.join('\n      ')}
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join('\n')}
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(two.certificatePem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.com/sso/post"/>
    <md:SingleSignOnService Binding="${options.binding ?? 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'}" Location="https://idp.example.com/sso/redirect"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
}

const refusal = (xml: string) => {
  try {
    parseIdpMetadata(xml);
  } catch (err) {
    expect(err).to.be.instanceOf(SamlMetadataError);
    expect((err as SamlMetadataError).code).to.equal('sso.saml_metadata_invalid');
    expect((err as SamlMetadataError).expose).to.equal(true);
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('parseIdpMetadata (an admin uploads the IdP metadata XML)', () => {
  it('reads the entity id, the HTTP-Redirect SSO URL and the signing certificate (not the encryption one)', () => {
    const parsed = parseIdpMetadata(metadata());
    expect(parsed).to.deep.equal({ idpEntityId: 'https://idp.example.com/saml', ssoUrl: 'https://idp.example.com/sso/redirect', idpCertificates: [one.certificatePem] });
  });

  it('keeps both signing certificates during an IdP rollover, and a KeyDescriptor without `use` counts as signing', () => {
    expect(parseIdpMetadata(metadata({ certs: [one.certificatePem, two.certificatePem] })).idpCertificates).to.deep.equal([one.certificatePem, two.certificatePem]);
    expect(parseIdpMetadata(metadata({ use: '' })).idpCertificates).to.deep.equal([one.certificatePem]);
  });

  it('accepts an EntitiesDescriptor holding one IdP, and a byte-order mark', () => {
    const wrapped = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata().replace('<?xml version="1.0"?>', '')}</md:EntitiesDescriptor>`;
    expect(parseIdpMetadata(`\uFEFF${wrapped}`).idpEntityId).to.equal('https://idp.example.com/saml');
  });

  it('refuses malformed or hostile XML with a clear message', () => {
    expect(refusal('')).to.match(/empty/);
    expect(refusal('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"')).to.match(/not valid XML/);
    expect(refusal('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')).to.match(/DTD is not allowed/);
    expect(refusal('<html><body>Sign in</body></html>')).to.match(/not SAML 2.0 metadata/);
    expect(refusal('x'.repeat(600 * 1024))).to.match(/too large/);
  });

  it('refuses metadata it cannot configure a connector from, saying what is missing', () => {
    expect(refusal(metadata({ entityId: '' }))).to.match(/no entityID/);
    expect(refusal(metadata({ binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact' }))).to.match(/HTTP-Redirect/);
    expect(refusal(metadata({ certs: [] }))).to.match(/no signing certificate/);
    expect(refusal(metadata({ protocol: 'urn:oasis:names:tc:SAML:1.1:protocol' }))).to.match(/no IDPSSODescriptor for SAML 2.0/);
    expect(refusal(metadata({ certs: [one.certificatePem, two.certificatePem, generateSpKeys(new Date()).certificatePem] }))).to.match(/two at most/);
    expect(refusal(metadata().replace(body(one.certificatePem).slice(0, 64), 'AAAA'))).to.match(/not a valid X.509/);
    const two_ = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata().replace('<?xml version="1.0"?>', '').repeat(2)}</md:EntitiesDescriptor>`;
    expect(refusal(two_)).to.match(/exactly one/);
  });
});

describe('parseSamlConnectorConfig (what the console stores for a SAML connector)', () => {
  const valid = { idpEntityId: 'https://idp.example.com/saml', ssoUrl: 'https://idp.example.com/sso', idpCertificates: [one.certificatePem] };

  it('takes the metadata fields and turns IdP-initiated login off unless asked', () => {
    expect(parseSamlConnectorConfig(valid)).to.deep.equal({ ...valid, idpInitiated: false });
    expect(parseSamlConnectorConfig({ ...valid, idpInitiated: true, emailAttribute: 'mail' })).to.include({ idpInitiated: true, emailAttribute: 'mail' });
  });

  it('refuses a plain http SSO URL (but for a local test IdP), a certificate that does not parse, three certificates, unknown keys', () => {
    expect(() => parseSamlConnectorConfig({ ...valid, ssoUrl: 'http://idp.example.com/sso' })).to.throw();
    expect(parseSamlConnectorConfig({ ...valid, ssoUrl: 'http://127.0.0.1:9999/sso' }).ssoUrl).to.equal('http://127.0.0.1:9999/sso');
    expect(() => parseSamlConnectorConfig({ ...valid, idpCertificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'] })).to.throw();
    expect(() => parseSamlConnectorConfig({ ...valid, idpCertificates: [one.certificatePem, two.certificatePem, one.certificatePem] })).to.throw();
    expect(() => parseSamlConnectorConfig({ ...valid, idpCertificates: [] })).to.throw();
    expect(() => parseSamlConnectorConfig({ ...valid, privateKey: 'x' })).to.throw();
  });
});

describe('expired IdP certificates (security review, finding 7)', () => {
  const expired = generateSpKeys(new Date(Date.now() - 3 * 365 * 86_400_000), { years: 1 });
  const soon = generateSpKeys(new Date(Date.now() - 365 * 86_400_000 + 10 * 86_400_000), { years: 1 });

  it('the metadata leaves an expired certificate out (an IdP mid-rollover lists both), and is refused when every one has expired', () => {
    expect(parseIdpMetadata(metadata({ certs: [expired.certificatePem, one.certificatePem] })).idpCertificates).to.deep.equal([one.certificatePem]);
    expect(refusal(metadata({ certs: [expired.certificatePem] }))).to.match(/expired/);
  });

  it('the admin\'s settings refuse an expired certificate (on the clock given), naming which one', () => {
    const input = { idpEntityId: 'https://idp.example.com/saml', ssoUrl: 'https://idp.example.com/sso', idpCertificates: [one.certificatePem, expired.certificatePem] };
    expect(() => parseSamlConnectorConfig(input)).to.throw(/idpCertificates|expired/);
    // The same certificate, a year earlier, was fine.
    expect(parseSamlConnectorConfig(input, { now: Date.now() - 2.5 * 365 * 86_400_000 }).idpCertificates).to.have.length(2);
  });

  it('warns the console about an expired, a soon expiring and a not yet valid certificate, and says nothing of a good one', () => {
    const now = Date.now();
    const warnings = idpCertificateWarnings({ idpCertificates: [one.certificatePem, expired.certificatePem, soon.certificatePem] }, now);
    expect(warnings.map((w) => [w.index, w.kind])).to.deep.equal([[1, 'expired'], [2, 'expires_soon']]);
    expect(warnings[0]!.message).to.match(/expired on \d{4}-\d{2}-\d{2}/);
    const future = generateSpKeys(new Date(now + 5 * 86_400_000));
    expect(idpCertificateWarnings({ idpCertificates: [future.certificatePem] }, now).map((w) => w.kind)).to.deep.equal(['not_yet_valid']);
  });
});
