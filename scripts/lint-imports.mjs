// Checks the import direction of docs/architecture.md with dependency-cruiser (rules in
// .dependency-cruiser.cjs; docs/decisions/0023-layout-and-import-rules.md).
//
// Why a copy: dependency-cruiser parses TypeScript through the `typescript` package's JavaScript
// API, which TypeScript 7 (the native compiler this project type-checks with) does not have yet.
// So src/ is copied to a temporary folder as JavaScript: Node's own type stripper removes the
// annotations, after `import type` has been turned into a plain import so that a type-only import
// counts as a dependency like any other (a flow that imports a query type still depends on
// persistence). Relative `.ts` specifiers become `.js`; paths in the report are given back as `.ts`.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';

// Node 22.12 (the oldest we run on) lacks stripTypeScriptTypes (22.13+). The check runs in CI on
// Node 24; on an older Node it says so and steps aside rather than failing the test command.
const { stripTypeScriptTypes } = nodeModule;
if (typeof stripTypeScriptTypes !== 'function') {
  process.stdout.write(`lint:imports skipped: it needs Node.js 22.13 or newer (this is ${process.versions.node})\n`);
  process.exit(0);
}
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

process.removeAllListeners('warning'); // stripTypeScriptTypes is experimental; its warning is noise here
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'lanyard-imports-'));

function toJavaScript(source) {
  const valueImports = source
    .replace(/^(\s*)import type\s/gm, '$1import ')
    .replace(/^(\s*)export type(\s*\{[^}]*\}\s*from\s)/gm, '$1export$2');
  return stripTypeScriptTypes(valueImports, { mode: 'strip' })
    .replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
}

try {
  for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const from = join(entry.parentPath, entry.name);
    const to = join(work, relative(root, from)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, toJavaScript(readFileSync(from, 'utf8')));
  }
  cpSync(join(root, 'package.json'), join(work, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
  const result = spawnSync(process.execPath, [
    join(root, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs'),
    '--config', join(root, '.dependency-cruiser.cjs'),
    '--output-type', 'err',
    'src',
  ], { cwd: work, encoding: 'utf8' });
  const asTypeScript = (text) => text.replace(/(src\/[\w./-]+?)\.js\b/g, '$1.ts');
  process.stdout.write(asTypeScript(result.stdout ?? ''));
  process.stderr.write(asTypeScript(result.stderr ?? ''));
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
