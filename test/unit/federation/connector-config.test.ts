import { expect } from 'chai';
import { parseOidcConnectorConfig } from '../../../src/federation/connectors.ts';
import { connectorAmr, provenanceFrom } from '../../../src/policy/policy.ts';
import { upstreamRulesOf } from '../../../src/federation/upstream-fetch.ts';

const testRules = upstreamRulesOf({ env: 'test', allowPrivateNetworkUpstreams: true });

describe('OIDC connector settings', () => {
  it('normalises the issuer and puts openid among the scopes', () => {
    expect(parseOidcConnectorConfig({ issuer: 'https://login.acme.example/', clientId: ' app ', scopes: 'email  profile email' }, testRules))
      .to.deep.equal({ issuer: 'https://login.acme.example', clientId: 'app', scopes: 'openid email profile' });
  });

  it('allows plain http for a local issuer only', () => {
    expect(parseOidcConnectorConfig({ issuer: 'http://127.0.0.1:4000', clientId: 'a', scopes: '' }, testRules).issuer).to.equal('http://127.0.0.1:4000');
    for (const issuer of ['http://idp.acme.example', 'ftp://idp.acme.example', 'https://idp.acme.example/?tenant=x', 'https://user@idp.acme.example', 'not a url']) {
      expect(() => parseOidcConnectorConfig({ issuer, clientId: 'a', scopes: '' }, testRules), issuer).to.throw();
    }
  });

  it('refuses scope tokens RFC 6749 does not allow, claim names with markup, and unknown fields', () => {
    expect(() => parseOidcConnectorConfig({ issuer: 'https://i.example', clientId: 'a', scopes: 'openid "quoted"' }, testRules)).to.throw();
    expect(() => parseOidcConnectorConfig({ issuer: 'https://i.example', clientId: 'a', scopes: '', emailClaim: '<mail>' }, testRules)).to.throw();
    expect(() => parseOidcConnectorConfig({ issuer: 'https://i.example', clientId: 'a', scopes: '', extra: 1 }, testRules)).to.throw();
  });
});

describe('provenance: the connector a login went through', () => {
  it('is read from its amr value', () => {
    expect(provenanceFrom({ amr: ['fed', connectorAmr('con_abc')], authTime: 5 })).to.include({ connector: 'con_abc', authTime: 5 });
    expect(provenanceFrom({ amr: ['pwd'] })).to.not.have.property('connector');
    expect(provenanceFrom({ amr: ['fed', 'sso:'] }), 'an empty value names nothing').to.not.have.property('connector');
  });
});
