import { SessionLockException } from '../contracts/session-exception.js';

/** One caller's turn on a session ID in this process. */
export interface LocalTurn<T> {
  /**
   * What the previous holder handed over with its turn (the store lock and the record it left),
   * or `undefined` when this caller must take the store lock itself.
   */
  readonly baton: T | undefined;
  /**
   * Ends the turn. With a `baton`, hands it to the next waiter and returns true; when nobody is
   * waiting it returns false and the turn stays held, so the caller releases what the baton stands
   * for and then calls `release()` again. Without a baton: lets the next waiter in (returns true
   * the first time).
   */
  release(baton?: T): boolean;
}

/**
 * In-process FIFO per session ID, in front of the driver's lock. Requests of one session that
 * reach the same process queue here and are handed over on release, instead of all polling the
 * store: a hot session costs one lock attempt per request, or none when the holder hands its store
 * lock over with the turn. Waiters are served in order. The driver's lock still excludes other
 * processes.
 */
export class LocalLockQueue<T> {
  private readonly queues = new Map<string, Array<(baton: T | undefined) => void>>();

  /** Resolves once this caller is first in line for `id`; rejects with `SessionLockException` after `timeoutMs`. */
  acquire(id: string, timeoutMs: number): Promise<LocalTurn<T>> {
    return Promise.resolve(this.tryAcquire(id) ?? this.wait(id, timeoutMs));
  }

  /**
   * The turn at once when nobody holds `id` in this process (the common case), else null. Lets the
   * caller skip a promise and a microtask per request on the uncontended path.
   */
  tryAcquire(id: string): LocalTurn<T> | null {
    if (this.queues.has(id)) return null;
    this.queues.set(id, []);
    return this.turn(id, undefined);
  }

  private wait(id: string, timeoutMs: number): Promise<LocalTurn<T>> {
    const queue = this.queues.get(id)!;
    return new Promise((resolve, reject) => {
      const grant = (baton: T | undefined): void => {
        clearTimeout(timer);
        resolve(this.turn(id, baton));
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

  /** Whether another caller is waiting for `id` right now (the holder may then hand over its store lock). */
  hasWaiter(id: string): boolean {
    return (this.queues.get(id)?.length ?? 0) > 0;
  }

  private turn(id: string, baton: T | undefined): LocalTurn<T> {
    let done = false;
    return {
      baton,
      release: (handOver?: T): boolean => {
        if (done) return false;
        const queue = this.queues.get(id);
        const next = queue?.shift();
        if (!next && handOver !== undefined) return false;
        done = true;
        if (next) next(handOver);
        else this.queues.delete(id);
        return true;
      },
    };
  }
}
