import { expect } from 'chai';
import { domainOfEmail, normalizeDomain } from '../../../src/organizations/domain-name.ts';
import { isPublicEmailDomain } from '../../../src/organizations/public-email-domains.ts';
import { isPublicAddress } from '../../../src/organizations/network-address.ts';

describe('organizations: domain names', () => {
  const ok = (input: string, domain: string) => it(`normalises ${JSON.stringify(input)} to ${domain}`, () => {
    expect(normalizeDomain(input)).to.deep.equal({ ok: true, domain });
  });
  const refused = (input: unknown, problem: string) => it(`refuses ${JSON.stringify(input)?.slice(0, 40)} (${problem})`, () => {
    expect(normalizeDomain(input)).to.deep.equal({ ok: false, problem });
  });

  ok('Acme.COM', 'acme.com');
  ok('  acme.com  ', 'acme.com');
  ok('acme.com.', 'acme.com');
  ok('eu.acme.com', 'eu.acme.com');
  ok('bücher.de', 'xn--bcher-kva.de');
  ok('BÜCHER.de', 'xn--bcher-kva.de');
  ok('xn--bcher-kva.de', 'xn--bcher-kva.de');
  ok('例え.テスト', 'xn--r8jz45g.xn--zckzah');
  ok('ｅｘａｍｐｌｅ.org', 'example.org');
  ok('a1-b2.co.uk', 'a1-b2.co.uk');
  ok('outlook.acme.com', 'outlook.acme.com');

  refused('', 'domain.empty');
  refused('   ', 'domain.empty');
  refused(undefined, 'domain.empty');
  refused(['acme.com'], 'domain.empty');
  refused('acme.com..', 'domain.malformed');
  refused('.acme.com', 'domain.malformed');
  refused('a..b.com', 'domain.malformed');
  refused('-acme.com', 'domain.malformed');
  refused('acme-.com', 'domain.malformed');
  refused('ac_me.com', 'domain.malformed');
  refused('acme.com/path', 'domain.malformed');
  refused('https://acme.com', 'domain.malformed');
  refused('ada@acme.com', 'domain.malformed');
  refused('acme.com:443', 'domain.malformed');
  refused('%61cme.com', 'domain.malformed');
  refused('ac me.com', 'domain.malformed');
  refused('*.acme.com', 'domain.malformed');
  refused('xn--zz.com', 'domain.malformed');
  refused(`${'a'.repeat(64)}.com`, 'domain.malformed');
  refused('127.0.0.1', 'domain.ip_address');
  refused('127.1', 'domain.ip_address');
  refused('0x7f.0.0.1', 'domain.ip_address');
  refused('::1', 'domain.ip_address');
  refused('[2001:db8::1]', 'domain.ip_address');
  refused('acme.123', 'domain.ip_address');
  refused('localhost', 'domain.single_label');
  refused('com', 'domain.single_label');
  refused(`${'a'.repeat(63)}.`.repeat(4) + 'com', 'domain.too_long');
  refused('a'.repeat(100_000), 'domain.too_long');
  refused('gmail.com', 'domain.public_email');
  refused('GoogleMail.com', 'domain.public_email');
  refused('mail.gmail.com', 'domain.public_email');
  refused('outlook.com', 'domain.public_email');
  refused('hotmail.co.uk', 'domain.public_email');
  refused('proton.me', 'domain.public_email');
  refused('gmx.ch', 'domain.public_email');
  refused('yandex.com.tr', 'domain.public_email');
  refused('mail.ru', 'domain.public_email');

  it('reads the domain of an address in the stored form', () => {
    expect(domainOfEmail('ada@Bücher.de')).to.equal('xn--bcher-kva.de');
    expect(domainOfEmail('ada@gmail.com'), 'public domains still parse (for reading, not claiming)').to.equal('gmail.com');
    expect(domainOfEmail('no-at-sign')).to.equal(undefined);
  });

  it('does not mistake company domains for providers', () => {
    for (const domain of ['acme.com', 'atlassian.com', 'gmail.acme.com', 'yahoo.acme.co.uk']) expect(isPublicEmailDomain(domain), domain).to.equal(false);
  });
});

describe('organizations: addresses a server-side fetch may reach', () => {
  for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '64:ff9b::a00:1', 'not-an-ip']) {
    it(`refuses ${address}`, () => expect(isPublicAddress(address)).to.equal(false));
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '::ffff:8.8.8.8', '2606:4700::1111']) {
    it(`allows ${address}`, () => expect(isPublicAddress(address)).to.equal(true));
  }
});

describe('organizations: public suffixes (tldts, the Public Suffix List bundled)', () => {
  for (const suffix of ['co.uk', 'com.au', 'github.io', 'herokuapp.com', 's3.amazonaws.com', 'blogspot.com', '公司.cn', 'xn--55qx5d.cn', 'ac.jp']) {
    it(`refuses ${suffix}: names under it are anyone's`, () => {
      expect(normalizeDomain(suffix)).to.deep.equal({ ok: false, problem: 'domain.public_suffix' });
    });
  }
  for (const [input, domain] of [['acme.co.uk', 'acme.co.uk'], ['acme.github.io', 'acme.github.io'], ['corp.internal', 'corp.internal'], ['eu.acme.com', 'eu.acme.com']] as const) {
    it(`accepts ${input}, a registrable domain (or under one)`, () => {
      expect(normalizeDomain(input)).to.deep.equal({ ok: true, domain });
    });
  }
  it('still reads an address at a public suffix (for claiming, not for verifying)', () => {
    expect(domainOfEmail('someone@github.io')).to.equal('github.io');
  });
});
