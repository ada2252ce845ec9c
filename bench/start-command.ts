/**
 * `npm start` (or, with `entry`, another script such as `npm run cli`) as package.json says it:
 * its `VAR=${VAR:-value}` defaults (glibc's malloc settings must be in the environment before the
 * process starts) and the node options before the entry. The soak and the import bench run the
 * same, so that their figures are those of the documented commands (decisions 0059, 0067).
 */
export function startCommand(script: string, entry = 'src/main.ts'): { env: Record<string, string>; args: string[] } {
  const words = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length; i += 1) {
    const assignment = /^([A-Z_][A-Z0-9_]*)=\$\{\1:-([^}]*)\}$/.exec(words[i]!);
    if (!assignment) break;
    env[assignment[1]!] = process.env[assignment[1]!] ?? assignment[2]!;
  }
  if (words[i] !== 'node' || words.at(-1) !== entry) throw new Error(`package.json's start script is not "[VAR=\${VAR:-value} …] node [options] ${entry}": ${script}`);
  return { env, args: words.slice(i + 1, -1) };
}
