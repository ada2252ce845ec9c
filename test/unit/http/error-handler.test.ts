import { expect } from 'chai';
import { normalise } from '../../../src/http/error-handler.ts';

describe('normalise (what an error thrown below becomes)', () => {
  it('answers a write that raced an organization’s deletion (SQLSTATE LY404, migration 0029) as the 404 of a gone organization', () => {
    const raced = Object.assign(new Error('organization org_x is deleted'), { code: 'LY404' });
    expect(normalise(raced)).to.include({ status: 404, code: 'request.not_found' });
  });

  it('answers a deadlock between two changes of one organization as a change to send again (409), not a failure', () => {
    expect(normalise(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).to.include({ status: 409, code: 'request.concurrent_change' });
  });

  it('keeps a NUL or invalid byte a 400, and anything unknown a 500 that says nothing of it', () => {
    expect(normalise(Object.assign(new Error('x'), { code: '22021' }))).to.include({ status: 400, code: 'request.invalid_characters' });
    const unknown = normalise(Object.assign(new Error('relation "secret_table" does not exist'), { code: '42P01' }));
    expect(unknown).to.include({ status: 500, code: 'server.error' });
    expect(unknown.message).not.to.contain('secret_table');
  });
});
