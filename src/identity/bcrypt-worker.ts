/**
 * A worker thread that compares passwords with imported Trello bcrypt hashes
 * (src/identity/bcrypt-workers.ts). bcryptjs is JavaScript: run on the event loop, one check at
 * Trello's cost 10 took ~90 ms of it, for every wrong password and unknown address.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getPriority, setPriority } from 'node:os';
import bcrypt from 'bcryptjs';

export interface BcryptJob { id: number; hash: string; password: string }
export interface BcryptAnswer { id: number; ok: boolean }

const { nice } = workerData as { nice: number };
// As the argon2 pool threads (decision 0056): on Linux this thread's own nice value, never raised.
if (nice > 0 && process.platform === 'linux') {
  try {
    if (getPriority(0) < nice) setPriority(0, nice);
  } catch {
    // Not allowed here: the thread keeps the process's priority.
  }
}

parentPort!.on('message', (job: BcryptJob) => {
  let ok = false;
  try {
    ok = bcrypt.compareSync(job.password, job.hash);
  } catch {
    ok = false; // a malformed hash matches nothing
  }
  parentPort!.postMessage({ id: job.id, ok } satisfies BcryptAnswer);
});
