import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };

/** Makes the child believe it runs on `version` (no hook in the script itself). */
const fakeVersion = (version: string) => `--import=data:text/javascript,Object.defineProperty(process,"version",{value:"${version}"})`;

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // Without the check, `npm start` would start a server (the real Node is new enough): end it.
    const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * A newcomer on an old Node reads one line naming the version needed, not
 * "node: bad option: --experimental-strip-types" (scripts/check-node.mjs, run before the
 * README's commands by package.json's pre-scripts).
 */
describe('Node.js version check (scripts/check-node.mjs)', function () {
  this.timeout(120_000);

  it('takes the minimum from package.json engines', () => {
    expect(pkg.engines.node).to.equal('>=22.12');
  });

  for (const [version, ok] of [['v18.20.4', false], ['v20.18.0', false], ['v22.11.0', false], ['v22.12.0', true], ['v23.0.0', true], ['v24.21.0', true]] as const) {
    it(`${ok ? 'lets' : 'stops'} Node ${version} ${ok ? 'through, silently' : 'with one line'}`, async () => {
      const res = await run(process.execPath, [fakeVersion(version), 'scripts/check-node.mjs']);
      expect(res.code).to.equal(ok ? 0 : 1);
      expect(res.stdout).to.equal('');
      if (ok) expect(res.stderr).to.equal('');
      else expect(res.stderr).to.equal(`Lanyard needs Node.js 22.12 or newer (this is ${version}): install Node.js 24 LTS (https://nodejs.org/en/download), then run the command again.\n`);
    });
  }

  it('runs before npm start, npm test and npm run cli', () => {
    for (const script of ['prestart', 'pretest', 'precli', 'premigrate', 'prebench']) expect(pkg.scripts[script], script).to.match(/^node scripts\/check-node\.mjs( &&|$)/);
  });

  it('stops `npm start` on an old Node before the server starts', async () => {
    // NODE_OPTIONS reaches the pre-script's node through npm; a file, since it strips quotes.
    const dir = mkdtempSync(join(tmpdir(), 'lanyard-node-version-'));
    const fake = join(dir, 'fake-node-20.mjs');
    writeFileSync(fake, 'Object.defineProperty(process, "version", { value: "v20.18.0" });\n');
    const res = await run('npm', ['start'], { NODE_OPTIONS: `--import=${fake}`, DATA_DIR: join(dir, 'data'), PORT: '39217' }).finally(() => rmSync(dir, { recursive: true, force: true }));
    expect(res.code).not.to.equal(0);
    expect(res.stderr).to.contain('Lanyard needs Node.js 22.12 or newer (this is v20.18.0)');
    expect(res.stdout + res.stderr).not.to.contain('Lanyard is running');
    expect(res.stdout + res.stderr).not.to.contain('bad option');
  });
});
