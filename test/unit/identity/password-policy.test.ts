import { expect } from 'chai';
import { createPasswordPolicy } from '../../../src/identity/password-policy.ts';

describe('password policy (NIST SP 800-63B)', () => {
  const policy = createPasswordPolicy({ minLength: 8 });

  it('accepts long passphrases without composition rules', () => {
    expect(policy.check('correct horse battery staple')).to.equal(undefined);
    expect(policy.check('alllowercaseletters')).to.equal(undefined);
    expect(policy.check('x'.repeat(1024))).to.equal(undefined);
  });

  it('counts characters, not bytes: eight emoji are eight characters', () => {
    expect(policy.check('🔑🔑🔑🔑🔑🔑🔑')).to.equal('password.too_short');
    expect(policy.check('🔑🗝️🔐🔒🔓🧷📎🪪')).to.equal(undefined);
  });

  it('names the rule that failed', () => {
    expect(policy.check('short')).to.equal('password.too_short');
    expect(policy.check('x'.repeat(1025))).to.equal('password.too_long');
    expect(policy.check('Password1')).to.equal('password.common');
    expect(policy.check('iloveyou')).to.equal('password.common');
    expect(policy.check('my-grace.hopper-pw', { email: 'Grace.Hopper@example.com' })).to.equal('password.contains_email');
    expect(policy.check('Grace Hopper ', { name: 'grace hopper' })).to.equal('password.equals_name');
  });

  it('raises the minimum when configured', () => {
    expect(createPasswordPolicy({ minLength: 12 }).check('elevenchars')).to.equal('password.too_short');
  });
});
