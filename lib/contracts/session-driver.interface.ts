import type { SessionRecord, SessionSummary } from './session-record.interface.js';

/** How long to wait for a lock, and how long a lock lives if its holder dies (milliseconds). */
export interface LockOptions {
  waitMs: number;
  ttlMs: number;
}

/**
 * The storage contract. Every method is async; every `id` argument has already been checked
 * with `isValidSessionId`, and drivers check it again before it reaches storage.
 *
 * Locks are fenced: `lock()` returns a token, and a `write()` given that token must fail with
 * `SessionLockException` if the lock is no longer held with it (its TTL passed and someone
 * else took it), so a slow holder never overwrites a newer holder's write.
 */
export interface SessionDriver {
  /** Connects or prepares storage. Called once at application start. */
  open(): Promise<void>;
  /** Releases resources the driver created (never a client the application passed in). */
  close(): Promise<void>;
  /** The record, or `null` when absent or past `evictAt`. Errors mean "store failed", never "absent". */
  read(id: string): Promise<SessionRecord | null>;
  /** Creates or replaces the record atomically. With `lockToken`, refuses if that lock is not held. */
  write(id: string, record: SessionRecord, lockToken?: string): Promise<void>;
  /**
   * Deletes the record and voids any lock held on it, so a request still holding that lock
   * cannot bring the session back with its fenced write ("sign out everywhere" sticks).
   * Absent is not an error.
   */
  destroy(id: string): Promise<void>;
  /** Deletes records whose `evictAt` has passed, in bounded batches; resolves to how many. */
  gc(): Promise<number>;
  /** Takes the exclusive lock on `id`, waiting up to `waitMs`; resolves to the owner's token. Throws `SessionLockException` on timeout. */
  lock(id: string, options: LockOptions): Promise<string>;
  /** Releases the lock if (and only if) `token` still owns it. */
  unlock(id: string, token: string): Promise<void>;
  /** Sessions whose `meta.userId` equals `userId` (expired ones excluded). */
  listByUser(userId: string): Promise<SessionSummary[]>;
  /** Destroys (as `destroy`) every session of `userId` except `exceptId`; resolves to how many were destroyed. */
  destroyByUser(userId: string, exceptId?: string): Promise<number>;

  /**
   * Optional: pushes a held lock's expiry to `ttlMs` from now, if `token` still owns it;
   * resolves to false when it does not. The manager renews locks of long requests with it,
   * so a slow handler is not overtaken by a second request after `lock.ttl`.
   */
  extend?(id: string, token: string, ttlMs: number): Promise<boolean>;
  /** Optional fast path: `lock` + `read` in one round trip. */
  lockAndRead?(id: string, options: LockOptions): Promise<{ token: string; record: SessionRecord | null }>;
  /** Optional fast path: fenced `write` + `unlock` in one round trip. */
  writeAndUnlock?(id: string, record: SessionRecord, token: string): Promise<void>;
}

/** Injection token of the configured driver: `@Inject(SessionDriver) driver: SessionDriver`. */
export const SessionDriver: unique symbol = Symbol('SessionDriver');
