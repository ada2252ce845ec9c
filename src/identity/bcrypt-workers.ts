import { Worker } from 'node:worker_threads';
import type { BcryptAnswer, BcryptJob } from './bcrypt-worker.ts';

/**
 * Worker threads for bcrypt comparisons, started at first use and kept (unref'd: they never hold
 * the process open). The caller bounds how many run at once (the hasher's queue), so at most that
 * many workers ever exist. A worker that dies fails its check (false is never answered for it:
 * the promise rejects) and is replaced by the next call.
 */
export function createBcryptWorkers(nice: number) {
  const idle: Worker[] = [];
  let nextId = 0;

  function start(): Worker {
    const worker = new Worker(new URL('./bcrypt-worker.ts', import.meta.url), { workerData: { nice } });
    worker.unref();
    return worker;
  }

  return {
    compare(hash: string, password: string): Promise<boolean> {
      const worker = idle.pop() ?? start();
      const id = (nextId += 1);
      return new Promise<boolean>((resolve, reject) => {
        const onMessage = (answer: BcryptAnswer) => {
          if (answer.id !== id) return;
          done();
          idle.push(worker);
          resolve(answer.ok);
        };
        const onError = (err: Error) => {
          done();
          reject(err);
        };
        const onExit = (code: number) => {
          done();
          reject(new Error(`bcrypt worker exited with ${code}`));
        };
        const done = () => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.once('error', onError);
        worker.once('exit', onExit);
        worker.postMessage({ id, hash, password } satisfies BcryptJob);
      });
    },
    /** Ends the workers (tests, shutdown). */
    async close(): Promise<void> {
      await Promise.all(idle.splice(0).map((w) => w.terminate()));
    },
  };
}
