import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { loadConfig, ConfigError } from '../../../src/config/load.ts';

/** DNS_SERVERS and the domain verification settings (docs/configuration.md). */
describe('config: domain verification', () => {
  const KEY = createHash('sha256').update('seven').digest('base64url');
  const production = { NODE_ENV: 'production', ISSUER: 'https://id.example.com', SECRET_KEY: KEY, DATABASE_URL: 'postgres://db/lanyard', SMTP_URL: 'smtp://mail.example.com:587' };
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };

  it('reads DNS_SERVERS as a list of ip[:port], and leaves it unset for the system resolvers', () => {
    expect(loadConfig({ NODE_ENV: 'test', DNS_SERVERS: '127.0.0.1:5353, 9.9.9.9,[::1]:53,2001:db8::1' }).dnsServers).to.deep.equal(['127.0.0.1:5353', '9.9.9.9', '[::1]:53', '2001:db8::1']);
    expect(loadConfig({ NODE_ENV: 'test', DNS_SERVERS: '' }).dnsServers).to.equal(undefined);
  });

  it('refuses DNS servers that are not addresses, naming the item', () => {
    expect(problems({ NODE_ENV: 'test', DNS_SERVERS: '127.0.0.1,dns.example.com' })).to.deep.equal(['DNS_SERVERS: key 2: must be an IP address, ip:port or [ipv6]:port']);
    expect(problems({ NODE_ENV: 'test', DNS_SERVERS: '127.0.0.1:70000' })).to.have.length(1);
  });

  it('checks the HTTPS file over https on 443 in production, and lets tests change both', () => {
    expect(loadConfig(production).domainVerification).to.deep.equal({ httpScheme: 'https', httpPort: 443, timeoutSeconds: 5, recheckIntervalSeconds: 86400 });
    expect(problems({ ...production, DOMAIN_VERIFICATION_HTTP_SCHEME: 'http', DOMAIN_VERIFICATION_HTTP_PORT: '8080' })).to.include.members([
      'domainVerification.httpScheme: must be https in production',
      'domainVerification.httpPort: must be 443 in production',
    ].map((line) => line.replace('domainVerification.httpScheme', 'DOMAIN_VERIFICATION_HTTP_SCHEME').replace('domainVerification.httpPort', 'DOMAIN_VERIFICATION_HTTP_PORT')));
    const test = loadConfig({ NODE_ENV: 'test', DOMAIN_VERIFICATION_HTTP_SCHEME: 'http', DOMAIN_VERIFICATION_HTTP_PORT: '8080' });
    expect(test.domainVerification).to.include({ httpScheme: 'http', httpPort: 8080, recheckIntervalSeconds: 0 });
    expect(problems({ NODE_ENV: 'test', DOMAIN_VERIFICATION_HTTP_SCHEME: 'ftp' })).to.have.length(1);
  });
});
