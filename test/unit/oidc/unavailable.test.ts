import { expect } from 'chai';
import { DatabaseUnavailableError } from '../../../src/persistence/db.ts';
import { TemporarilyUnavailable, withProtocolErrors } from '../../../src/oidc/unavailable.ts';

/** A storage adapter whose methods fail in each way the engine may meet. */
class Store {
  readonly model = 'AccessToken';
  calls = 0;
  async find(id: string) { this.calls += 1; return { id, model: this.model }; }
  async outage() { throw new DatabaseUnavailableError('connection lost'); }
  syncOutage(): Promise<void> { throw new DatabaseUnavailableError('no connection'); }
  async bug() { throw new TypeError('a bug'); }
}

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
};

describe('withProtocolErrors (the storage adapters as the engine calls them)', () => {
  it('answers what the method answers, called on the adapter itself', async () => {
    const store = new Store();
    const wrapped = withProtocolErrors(store);
    expect(await wrapped.find('x')).to.deep.equal({ id: 'x', model: 'AccessToken' });
    expect(await wrapped.find('y')).to.deep.equal({ id: 'y', model: 'AccessToken' });
    expect(store.calls).to.equal(2);
    expect(wrapped.model).to.equal('AccessToken');
  });

  it('turns a database outage into the protocol’s temporarily_unavailable, thrown or rejected', async () => {
    const wrapped = withProtocolErrors(new Store());
    for (const err of [await rejection(wrapped.outage()), await rejection(wrapped.syncOutage())]) {
      expect(err).to.be.instanceOf(TemporarilyUnavailable);
      expect(err).to.include({ status: 503, error: 'temporarily_unavailable' });
      expect((err as Error).cause).to.be.instanceOf(DatabaseUnavailableError);
    }
  });

  it('leaves any other error as it is', async () => {
    const err = await rejection(withProtocolErrors(new Store()).bug());
    expect(err).to.be.instanceOf(TypeError).and.not.instanceOf(TemporarilyUnavailable);
  });

  it('follows a method replaced on the adapter', async () => {
    const store = new Store();
    const wrapped = withProtocolErrors(store);
    expect(await wrapped.find('a')).to.deep.include({ id: 'a' });
    store.find = async (id: string) => ({ id: `${id}!`, model: 'replaced' });
    expect(await wrapped.find('a')).to.deep.equal({ id: 'a!', model: 'replaced' });
  });
});
