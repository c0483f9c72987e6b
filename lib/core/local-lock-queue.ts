import { SessionLockException } from '../contracts/session-exception.js';

/**
 * In-process FIFO per session ID, in front of the driver's lock. Requests of one session that
 * reach the same process queue here and are handed over on release, instead of all polling the
 * store: a hot session costs one lock attempt per request, and waiters are served in order.
 * The driver's lock still excludes other processes.
 */
export class LocalLockQueue {
  private readonly queues = new Map<string, Array<() => void>>();

  /** Resolves to a release function once this caller is first in line for `id`; rejects after `timeoutMs`. */
  acquire(id: string, timeoutMs: number): Promise<() => void> {
    let queue = this.queues.get(id);
    if (!queue) {
      this.queues.set(id, (queue = []));
      return Promise.resolve(this.releaser(id));
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        resolve(this.releaser(id));
      };
      const timer = setTimeout(() => {
        const q = this.queues.get(id);
        const at = q ? q.indexOf(grant) : -1;
        if (at >= 0) q!.splice(at, 1);
        reject(new SessionLockException());
      }, Math.max(0, timeoutMs));
      queue.push(grant);
    });
  }

  private releaser(id: string): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const queue = this.queues.get(id);
      const next = queue?.shift();
      if (next) next();
      else this.queues.delete(id);
    };
  }
}
