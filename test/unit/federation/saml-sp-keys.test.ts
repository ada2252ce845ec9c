import { expect } from 'chai';
import { X509Certificate, createPrivateKey, createPublicKey, publicEncrypt, privateDecrypt, constants } from 'node:crypto';
import { generateSpKeys } from '../../../src/federation/saml/sp-keys.ts';

describe('generateSpKeys (SAML service provider key pairs)', () => {
  const now = new Date('2030-03-04T05:06:07Z');
  const keys = generateSpKeys(now);
  const cert = new X509Certificate(keys.certificatePem);

  it('makes a self-signed X.509 certificate that node parses and that verifies with its own key', () => {
    expect(cert.subject).to.equal('CN=Lanyard SAML service provider');
    expect(cert.issuer).to.equal(cert.subject);
    expect(cert.verify(cert.publicKey)).to.equal(true);
    expect(cert.ca).to.equal(false);
  });

  it('pairs the certificate with the private key returned, RSA 2048', () => {
    const privateKey = createPrivateKey(keys.privateKeyPem);
    expect(cert.checkPrivateKey(privateKey)).to.equal(true);
    expect(privateKey.asymmetricKeyType).to.equal('rsa');
    expect(privateKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
    // RSA-OAEP key transport (XML Encryption) works with it, as an IdP encrypting to us does.
    const secret = Buffer.from('content-encryption-key');
    const wrapped = publicEncrypt({ key: createPublicKey(keys.certificatePem), padding: constants.RSA_PKCS1_OAEP_PADDING }, secret);
    expect(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, wrapped).equals(secret)).to.equal(true);
  });

  it('is valid from a minute before `now` for ten years, and records when it was made', () => {
    expect(new Date(cert.validFrom).toISOString()).to.equal('2030-03-04T05:05:07.000Z');
    expect(new Date(cert.validTo).toISOString()).to.equal('2040-03-04T05:06:07.000Z');
    expect(keys.createdAt).to.equal(now.toISOString());
  });

  it('writes GeneralizedTime for dates from 2050 (RFC 5280 §4.1.2.5)', () => {
    const late = new X509Certificate(generateSpKeys(new Date('2049-06-01T00:00:00Z'), { years: 5 }).certificatePem);
    expect(new Date(late.validTo).toISOString()).to.equal('2054-06-01T00:00:00.000Z');
  });

  it('makes a new key and serial every time', () => {
    const other = new X509Certificate(generateSpKeys(now).certificatePem);
    expect(other.serialNumber).to.not.equal(cert.serialNumber);
    expect(other.fingerprint256).to.not.equal(cert.fingerprint256);
  });
});
