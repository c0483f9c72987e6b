import { isValidSessionId, newLockToken } from '../contracts/session-id.js';
import { SessionException, SessionLockException } from '../contracts/session-exception.js';
import type { LockOptions, SessionDriver } from '../contracts/session-driver.interface.js';
import type { SessionRecord, SessionSummary } from '../contracts/session-record.interface.js';

interface HeldLock {
  token: string;
  expiresAt: number;
}

/**
 * In-process storage for tests and single-process development. The lock is real (fenced,
 * TTL-bounded, waiters woken on release) but only excludes requests of this process.
 */
export class MemoryDriver implements SessionDriver {
  private readonly records = new Map<string, SessionRecord>();
  private readonly locks = new Map<string, HeldLock>();
  private readonly waiters = new Map<string, Set<() => void>>();

  async open(): Promise<void> {}

  async close(): Promise<void> {
    this.records.clear();
    this.locks.clear();
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
  }

  async read(id: string): Promise<SessionRecord | null> {
    assertId(id);
    const record = this.records.get(id);
    if (!record) return null;
    if (record.evictAt <= Date.now()) {
      this.records.delete(id);
      return null;
    }
    // A copy: callers must never mutate what is "stored".
    return structuredClone(record);
  }

  async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    assertId(id);
    if (lockToken !== undefined && !this.holds(id, lockToken)) {
      throw new SessionLockException('The session lock expired before the write; the change was not saved. Raise lock.ttl if requests run this long.');
    }
    this.records.set(id, structuredClone(record));
  }

  async destroy(id: string): Promise<void> {
    assertId(id);
    this.records.delete(id);
    this.voidLock(id);
  }

  async gc(): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const [id, record] of this.records) {
      if (record.evictAt <= now) {
        this.records.delete(id);
        removed++;
      }
    }
    return removed;
  }

  async lock(id: string, { waitMs, ttlMs }: LockOptions): Promise<string> {
    assertId(id);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const now = Date.now();
      const held = this.locks.get(id);
      if (!held || held.expiresAt <= now) {
        const token = newLockToken();
        this.locks.set(id, { token, expiresAt: now + ttlMs });
        return token;
      }
      if (now >= deadline) throw new SessionLockException();
      // Sleep until released, until the holder's TTL passes, or until our deadline.
      await this.waitFor(id, Math.min(deadline, held.expiresAt) - now);
    }
  }

  async unlock(id: string, token: string): Promise<void> {
    assertId(id);
    if (!this.holds(id, token)) return;
    this.voidLock(id);
  }

  /** Drops the lock and wakes its waiters; a later fenced write by the old holder then fails. */
  private voidLock(id: string): void {
    if (!this.locks.delete(id)) return;
    const set = this.waiters.get(id);
    if (set) for (const wake of set) wake();
  }

  async extend(id: string, token: string, ttlMs: number): Promise<boolean> {
    assertId(id);
    if (!this.holds(id, token)) return false;
    this.locks.get(id)!.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async listByUser(userId: string): Promise<SessionSummary[]> {
    const now = Date.now();
    const out: SessionSummary[] = [];
    for (const [id, record] of this.records) {
      if (record.meta.userId === userId && record.evictAt > now) out.push({ id, meta: { ...record.meta } });
    }
    return out;
  }

  async destroyByUser(userId: string, exceptId?: string): Promise<number> {
    let removed = 0;
    for (const [id, record] of this.records) {
      if (record.meta.userId === userId && id !== exceptId) {
        this.records.delete(id);
        this.voidLock(id);
        removed++;
      }
    }
    return removed;
  }

  private holds(id: string, token: string): boolean {
    const held = this.locks.get(id);
    return held !== undefined && held.token === token && held.expiresAt > Date.now();
  }

  private waitFor(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      set.add(done);
    });
  }
}

function assertId(id: string): void {
  if (!isValidSessionId(id)) throw new SessionException('Refusing a malformed session ID before it reaches storage.');
}
