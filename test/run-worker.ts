import { Worker, type WorkerOptions } from 'node:worker_threads';

export interface WorkerRun<T> {
  /** Every message the worker posted, in order. */
  messages: T[];
  exitCode: number;
}

/**
 * Runs a worker thread to its end and returns what it posted and its exit code; rejects with the worker's
 * uncaught error. Every listener is attached before the worker can finish: Node drains a worker's pending
 * messages and emits 'exit' in one go when it exits, so a test that attaches its 'exit' listener only after
 * awaiting a message can miss the exit and wait forever (which happened on a loaded CI machine).
 */
export function runWorker<T = unknown>(file: string, options: WorkerOptions): Promise<WorkerRun<T>> {
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    let failure: unknown;
    const worker = new Worker(file, options);
    worker.on('message', (message: T) => messages.push(message));
    worker.once('error', (err) => {
      failure = err;
    });
    worker.once('exit', (exitCode) => {
      if (failure !== undefined) reject(failure);
      else resolve({ messages, exitCode });
    });
  });
}
