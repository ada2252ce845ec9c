import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { Database } from '../../src/persistence/db.ts';
import { run } from '../../src/cli/main.ts';

const root = join(import.meta.dirname, '..', '..');

/** Starts the real CLI (`npm run cli -- …`, with its Node options) in a child process. */
export function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', '--max-semi-space-size=32', join(root, 'src/cli/main.ts'), ...args], {
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

/**
 * Runs the CLI's entry (`run` in src/cli/main.ts) inside this process, with its own standard
 * input, output and error: the same parsing, commands, messages and exit statuses as `cli()`,
 * without a Node start and a module load per command (a few seconds each on a busy machine).
 * With `db`, the commands use that open database (the run's test database, on either engine)
 * instead of opening the one the environment names. `cli()` stays for what only a real process
 * shows: the exit status as the shell sees it, a process killed mid-command, the embedded
 * database's one-process lock.
 */
export async function cliInProcess(
  args: string[],
  env: Record<string, string>,
  options: { input?: string; db?: Database } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  // Collected as written (a Writable's write reaches _write at once), so complete when run() returns.
  const collect = () => {
    const chunks: Buffer[] = [];
    const stream = new Writable({ write(chunk: Buffer | string, _encoding, done) { chunks.push(Buffer.from(chunk)); done(); } });
    return { stream, text: () => Buffer.concat(chunks).toString() };
  };
  const stdout = collect();
  const stderr = collect();
  const code = await run(args, { NODE_ENV: 'test', ...env }, {
    stdin: Readable.from(options.input ? [Buffer.from(options.input)] : [], { objectMode: false }),
    stdout: stdout.stream,
    stderr: stderr.stream,
    db: options.db,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** Starts the real server (`npm start`) in a child process. */
export function spawnServer(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', join(root, 'src/main.ts')], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    cwd: root,
  });
}
