import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { environmentVariables } from '../../../src/config/schema.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** docs/reliability.md stays true: every fault names a test that exists, every setting is real. */
describe('docs/reliability.md and docs/configuration.md', () => {
  const reliability = read('docs/reliability.md');

  it('names, for each fault, a test file that exists', () => {
    const rows = reliability.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| fault') && !line.startsWith('| ---'));
    expect(rows.length).to.be.greaterThan(5);
    for (const row of rows) {
      const tests = [...row.matchAll(/`(test\/[^`]+\.test\.ts)`/g)].map((m) => m[1]!);
      expect(tests, `no test named for: ${row.slice(0, 60)}`).not.to.be.empty;
      for (const path of tests) expect(existsSync(join(root, path)), path).to.equal(true);
    }
  });

  it('names only settings that exist, and the configuration page documents every setting', () => {
    const named = [...reliability.matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((m) => m[1]!).filter((name) => name.includes('_'));
    for (const name of named) expect(environmentVariables, name).to.have.property(name);
    const configuration = read('docs/configuration.md');
    for (const variable of Object.keys(environmentVariables)) expect(configuration, variable).to.contain(`| \`${variable}\` |`);
  });
});
