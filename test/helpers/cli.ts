import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/** Starts the real CLI (`npm run cli -- …`, with its Node options) in a child process. */
export function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', '--max-old-space-size=128', '--max-semi-space-size=32', join(root, 'src/cli/main.ts'), ...args], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    cwd: root,
  });
}

/** Runs the real CLI to completion and collects what it printed. */
export function cli(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin!.end(input ?? '');
  });
}

/** Starts the real server (`npm start`) in a child process. */
export function spawnServer(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', join(root, 'src/main.ts')], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    cwd: root,
  });
}
