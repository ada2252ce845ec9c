import { pbkdf2 } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the scheduling priority (raises the nice value) of libuv's thread pool, where argon2
 * hashes run, so that when the CPU is full the event loop — which serves every token, JWKS and
 * discovery request — and the database's own processes are scheduled first, and hashing takes
 * what is left (docs/decisions/0056-hashing-at-low-priority.md).
 *
 * Linux keeps a nice value per thread: setpriority(PRIO_PROCESS, tid) changes that thread alone
 * (setpriority(2), "a nonstandard Linux feature"). libuv names its pool threads `libuv-worker`
 * (shown in /proc/self/task/<tid>/comm); the pool starts all its threads on the first job, so one
 * trivial job is queued first. Elsewhere (no /proc, or threads not named) nothing changes and the
 * caller is told so.
 */
export async function lowerWorkerPoolPriority(nice: number): Promise<{ threads: number }> {
  // `threads`: pool threads now at `nice` or lower in priority (a higher nice value).
  if (nice === 0 || process.platform !== 'linux') return { threads: 0 };
  await new Promise<void>((resolve, reject) => pbkdf2('', '', 1, 1, 'sha256', (err) => (err ? reject(err) : resolve())));
  let threads = 0;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return { threads: 0 };
  }
  for (const tid of tasks) {
    let name: string;
    try {
      name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended meanwhile
    }
    if (name !== 'libuv-worker') continue;
    try {
      // Never raised: a process started at a higher nice (a batch host, systemd's Nice=) keeps
      // it, and an unprivileged process could not lower it anyway.
      if (getPriority(Number(tid)) < nice) setPriority(Number(tid), nice);
      threads += 1;
    } catch {
      // The thread ended meanwhile, or the system refused: it keeps its priority.
    }
  }
  return { threads };
}
