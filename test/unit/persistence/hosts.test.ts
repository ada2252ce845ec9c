import { expect } from 'chai';
import { createHostSelector, DatabaseUrlError, parseDatabaseUrl } from '../../../src/persistence/hosts.ts';
import { loadConfig, ConfigError } from '../../../src/config/load.ts';

describe('DATABASE_URL with several hosts (libpq syntax, decision 0045)', () => {
  it('reads each host and port in order, with 5432 by default', () => {
    const target = parseDatabaseUrl('postgres://lanyard:s3cret@db1:6432,db2,[::1]:5433/lanyard?target_session_attrs=read-write');
    expect(target.hosts).to.deep.equal([{ host: 'db1', port: 6432 }, { host: 'db2', port: 5432 }, { host: '::1', port: 5433 }]);
    expect(target.targetSessionAttrs).to.equal('read-write');
    expect(target.failover).to.equal(true);
  });

  it('builds a single-host URL per host with the same credentials, database and parameters, less target_session_attrs', () => {
    const target = parseDatabaseUrl('postgresql://lanyard:s3cret@db1:6432,[::1]:5433/lanyard?sslmode=disable&target_session_attrs=primary&application_name=idp');
    expect(target.urlFor(target.hosts[0]!)).to.equal('postgresql://lanyard:s3cret@db1:6432/lanyard?sslmode=disable&application_name=idp');
    expect(target.urlFor(target.hosts[1]!)).to.equal('postgresql://lanyard:s3cret@[::1]:5433/lanyard?sslmode=disable&application_name=idp');
  });

  it('describes where it connects without the credentials', () => {
    const target = parseDatabaseUrl('postgres://lanyard:s3cret@db1:6432,db2:6433/lanyard?target_session_attrs=read-write');
    expect(target.where).to.equal('db1:6432,db2:6433/lanyard');
    expect(target.where).not.to.contain('s3cret');
  });

  it('keeps one host without target_session_attrs on the plain pool (no failover)', () => {
    expect(parseDatabaseUrl('postgres://postgres@127.0.0.1:5432/postgres').failover).to.equal(false);
    expect(parseDatabaseUrl('postgres://postgres@127.0.0.1:5432/postgres?target_session_attrs=any').failover).to.equal(false);
    // One host that must be writable still needs the check on each new connection.
    expect(parseDatabaseUrl('postgres://127.0.0.1/db?target_session_attrs=read-write').failover).to.equal(true);
    // Several hosts with the default (any): the first that answers.
    const any = parseDatabaseUrl('postgres://h1,h2/db');
    expect([any.failover, any.targetSessionAttrs]).to.deep.equal([true, 'any']);
  });

  it('refuses what it cannot honour, without repeating the URL', () => {
    const cases: [string, RegExp][] = [
      ['postgres://u:pw@h1,h2/db?target_session_attrs=prefer-standby', /target_session_attrs must be one of any, read-write, primary/],
      ['postgres://u:pw@h1,h2/db?target_session_attrs=read-write&target_session_attrs=any', /more than once/],
      ['postgres://u:pw@h1:0,h2/db', /port of host 1 must be 1-65535/],
      ['postgres://u:pw@h1,h2:70000/db', /port of host 2 must be 1-65535/],
      ['postgres://u:pw@h1:5432:1/db', /host 1|the host/],
      ['postgres://u:pw@h1,,h2/db', /empty entry/],
      ['postgres://u:pw@h1:abc/db', /not host\[:port\]/],
    ];
    for (const [url, message] of cases) {
      let caught: unknown;
      try {
        parseDatabaseUrl(url);
      } catch (err) {
        caught = err;
      }
      expect(caught, url).to.be.instanceOf(DatabaseUrlError);
      expect((caught as Error).message, url).to.match(message);
      expect((caught as Error).message).not.to.contain('pw');
    }
  });

  it('is validated at start-up: one line naming DATABASE_URL, never the password', () => {
    try {
      loadConfig({ DATABASE_URL: 'postgres://lanyard:hunter2@db1:5432,db2:99999/lanyard?target_session_attrs=read-write' });
      expect.fail('accepted a bad port');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems).to.deep.equal(['DATABASE_URL: the port of host 2 must be 1-65535']);
    }
    const config = loadConfig({ DATABASE_URL: 'postgres://lanyard@db1:6432,db2:6432/lanyard?target_session_attrs=read-write' });
    expect(config.databaseUrl).to.equal('postgres://lanyard@db1:6432,db2:6432/lanyard?target_session_attrs=read-write');
  });
});

describe('host selection', () => {
  it('starts with the first host, moves on from one that failed, and keeps the one accepted', () => {
    const selector = createHostSelector(3);
    expect(selector.order()).to.deep.equal([0, 1, 2]);
    selector.failed(0);
    expect(selector.preferred()).to.equal(1);
    selector.failed(1);
    selector.accepted(2);
    expect(selector.order()).to.deep.equal([2, 0, 1]);
    // A late failure of a host that is no longer preferred does not move the preference.
    selector.failed(0);
    expect(selector.preferred()).to.equal(2);
    selector.failed(2);
    expect(selector.preferred()).to.equal(0);
  });
});
