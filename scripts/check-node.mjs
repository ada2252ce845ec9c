// Runs with plain `node` before `npm start`, `npm test` and `npm run cli` (package.json "pre"
// scripts), and is written so that old Node versions can parse it: on Node 20 the real commands
// fail with "node: bad option: --experimental-strip-types", which names nothing useful.
// The minimum comes from package.json "engines.node", the one place it is written.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);

/** [major, minor] from ">=22.12", "v20.11.1" or "22". */
export function parseVersion(text) {
  const match = /(\d+)(?:\.(\d+))?/.exec(String(text));
  return match ? [Number(match[1]), Number(match[2] || 0)] : undefined;
}

/** The one line to print when `current` is older than `required`, else undefined. */
export function nodeVersionProblem(current, required) {
  const have = parseVersion(current);
  const need = parseVersion(required);
  if (!have || !need) return undefined;
  if (have[0] > need[0] || (have[0] === need[0] && have[1] >= need[1])) return undefined;
  return `Lanyard needs Node.js ${need[0]}.${need[1]} or newer (this is ${current}): install Node.js 24 LTS (https://nodejs.org/en/download), then run the command again.`;
}

export function requiredNodeVersion() {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
  return pkg.engines && pkg.engines.node;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const problem = nodeVersionProblem(process.version, requiredNodeVersion());
  if (problem) {
    process.stderr.write(problem + '\n');
    process.exit(1);
  }
}
