import { SessionException } from '../contracts/session-exception.js';
import type { SessionMeta, SessionRecord } from '../contracts/session-record.interface.js';
import type { SessionInterface } from '../contracts/session.interface.js';
import type { SessionEventType } from '../contracts/session-event.interface.js';
import { SessionBag } from './session-bag.js';
import { generateSessionId, generateToken } from './session-id.util.js';
import type { RequestFacts } from './request-facts.interface.js';
import type { LocalTurn } from './local-lock-queue.js';

/** What one request hands the next request of the same session in this process: the store lock and the record it left. */
export interface LockBaton {
  token: string;
  record: SessionRecord;
}

/** What a handle needs from its manager; an interface so the two files don't import each other. */
export interface SessionHandleHost {
  persist(handle: SessionHandle, final: boolean): Promise<void>;
  /** Logs a refused save(): its caller may not be listening (a save() nobody awaits). */
  warn(message: string): void;
  emit(type: SessionEventType, handle: SessionHandle, reason?: string): void;
  readonly absoluteTimeoutMs: number;
}

/**
 * The per-request session: data, metadata, lock token and commit bookkeeping. One per
 * request, never shared, so nothing of one request can leak into another.
 */
export class SessionHandle implements SessionInterface {
  /** Current ID; null until the session is first used (lazy start). */
  id: string | null = null;
  /** True when a record for `id` exists in the store. */
  stored = false;
  /** True once something was written to this session in this request (it must be persisted). */
  materialized = false;
  /** The ID whose lock this request holds, and the lock's token. */
  lockedId: string | null = null;
  lockToken: string | null = null;
  /** This request's turn among this process's requests of the same session (see LocalLockQueue). */
  localTurn: LocalTurn<LockBaton> | null = null;
  /** The stored record as this request knows it: read at start, replaced by each write (handed to the next local request when the commit writes nothing). */
  loadedRecord: SessionRecord | null = null;
  /** Set by the commit when the lock was renewed to be handed over: the record now stored. */
  baton: SessionRecord | null = null;
  /** Renews the lock while a long request holds it (cleared when the lock is released). */
  renewTimer: NodeJS.Timeout | null = null;
  /** Old IDs to destroy at commit (regenerate/invalidate). */
  readonly pendingDestroy: string[] = [];
  /** Metadata changed (user ID, CSRF token, fingerprint) since load. */
  metaDirty = false;
  /**
   * The browser's session cookie should be deleted if nothing new is stored: its session was
   * found dead (expired, fingerprint mismatch, undecodable) or invalidated here. A merely absent
   * record does not qualify: a concurrent request may have just regenerated it, and deleting
   * the cookie would sign the user out of the new session.
   */
  dropCookie = false;
  /** regenerate() was called in this request. */
  regenerated = false;
  /** Set once the final commit ran; further changes are refused. */
  finished = false;
  /**
   * The save() whose write is in flight, if any. Changes meanwhile are refused: the write's
   * bookkeeping (clean flags, stored state, metadata) would otherwise wipe them unnoticed.
   */
  saving: Promise<void> | null = null;
  /**
   * Set by the HTTP layer: puts the session's cookie on the response after each save(). A
   * handler that writes the response itself (`@Res()`) does so before the commit runs.
   */
  onSaved: (() => void) | null = null;
  bag = new SessionBag();
  meta: SessionMeta | null = null;

  constructor(
    private readonly host: SessionHandleHost,
    readonly facts: RequestFacts,
    public readOnly: boolean,
  ) {}

  /** Adopts a record read from the store (the manager validated it). */
  load(id: string, meta: SessionMeta, bag: SessionBag): void {
    this.id = id;
    this.meta = meta;
    this.bag = bag;
    this.stored = true;
    this.materialized = true;
  }

  getId(): string | null {
    return this.id;
  }

  get<K extends string>(key: K, defaultValue?: any): any {
    return this.bag.get(key, defaultValue);
  }

  set(key: string, value: unknown): void {
    this.mutate().set(key, value);
  }

  has(key: string): boolean {
    return this.bag.has(key);
  }

  forget(key: string): void {
    if (!this.bag.exists(key)) return;
    this.mutate().forget(key);
  }

  all(): Record<string, unknown> {
    return this.bag.all();
  }

  pull(key: string, defaultValue?: any): any {
    if (!this.bag.exists(key)) return defaultValue;
    return this.mutate().pull(key, defaultValue);
  }

  increment(key: string, by = 1): number {
    return this.mutate().increment(key, by);
  }

  flash(key: string, value: unknown): void {
    this.mutate().flash(key, value);
  }

  getFlash<T = unknown>(key: string, defaultValue?: T): T | undefined {
    return this.bag.getFlash(key, defaultValue) as T | undefined;
  }

  reflash(): void {
    this.assertChangeable();
    // Without a session there is no flash data to keep: do not start one for it.
    if (this.materialized) this.bag.reflash();
  }

  keep(...keys: string[]): void {
    this.assertChangeable();
    if (this.materialized) this.bag.keep(keys);
  }

  now(key: string, value: unknown): void {
    this.assertChangeable();
    // Lives for this request only, so it never starts a stored session by itself.
    this.bag.now(key, value);
  }

  regenerate(destroyOld = true): void {
    this.assertChangeable();
    // Nothing stored or started yet: the first change will get a fresh ID anyway.
    if (!this.materialized) return;
    const oldId = this.id!;
    const replacesStored = this.stored;
    if (destroyOld && replacesStored) this.pendingDestroy.push(oldId);
    this.id = generateSessionId();
    this.stored = false;
    if (this.meta!.csrfToken !== null) this.meta!.csrfToken = generateToken();
    this.metaDirty = true;
    // A session never stored replaced nothing: its first write announces it as `created`.
    if (!replacesStored) return;
    this.regenerated = true;
    this.host.emit('regenerated', this);
  }

  invalidate(): void {
    this.assertChangeable();
    const userIdBefore = this.meta?.userId ?? null;
    if (this.id !== null && this.stored) this.pendingDestroy.push(this.id);
    this.host.emit('invalidated', this, userIdBefore === null ? undefined : 'user');
    this.dropCookie = this.facts.cookieId !== null;
    this.id = generateSessionId();
    this.stored = false;
    // Lazy again: the new, empty session is only stored if something is put into it.
    this.materialized = false;
    this.meta = this.freshMeta();
    this.bag = new SessionBag();
    this.metaDirty = false;
    // Whatever is stored under the new ID from here on is a new session.
    this.regenerated = false;
  }

  /**
   * Writes now; concurrent calls run one after the other. Await it before changing the session
   * again. Where it cannot write (read-only, already committed) the promise rejects: never a
   * synchronous throw, which a caller's `.catch()` would miss. The refusal is also logged, and
   * a caller that ignores the promise does not bring the process down (an unhandled rejection).
   */
  save(): Promise<void> {
    try {
      this.assertWritable();
    } catch (err) {
      this.host.warn(`save() was refused: ${(err as Error).message}`);
      const refused = Promise.reject(err);
      refused.catch(() => undefined);
      return refused;
    }
    const before = this.saving;
    const run = (async () => {
      if (before !== null) await before.catch(() => undefined);
      await this.host.persist(this, false);
      this.onSaved?.();
    })();
    this.saving = run;
    const settle = (): void => {
      if (this.saving === run) this.saving = null;
    };
    run.then(settle, settle);
    return run;
  }

  csrfToken(): string {
    if (this.meta?.csrfToken) return this.meta.csrfToken;
    this.mutate();
    this.meta!.csrfToken = generateToken();
    this.metaDirty = true;
    return this.meta!.csrfToken;
  }

  regenerateCsrfToken(): string {
    this.mutate();
    this.meta!.csrfToken = generateToken();
    this.metaDirty = true;
    return this.meta!.csrfToken;
  }

  /** The stored token without creating one (for the guard). */
  peekCsrfToken(): string | null {
    return this.meta?.csrfToken ?? null;
  }

  setUserId(id: string | number | null): void {
    if (id !== null && typeof id !== 'string' && typeof id !== 'number') throw new TypeError('setUserId() takes a string, a number or null.');
    this.mutate();
    this.meta!.userId = id === null ? null : String(id);
    this.metaDirty = true;
  }

  getUserId(): string | null {
    return this.meta?.userId ?? null;
  }

  setIpAddress(ip: string | null): void {
    this.mutate();
    this.meta!.ipAddress = ip;
    this.metaDirty = true;
  }

  setUserAgent(ua: string | null): void {
    this.mutate();
    this.meta!.userAgent = ua;
    this.metaDirty = true;
  }

  get createdAt(): Date | null {
    return this.meta ? new Date(this.meta.createdAt) : null;
  }

  get lastActivity(): Date | null {
    return this.meta ? new Date(this.meta.lastActivity) : null;
  }

  get expiresAt(): Date | null {
    return this.meta ? new Date(this.meta.expiresAt) : null;
  }

  /** Every change goes through here: it enforces read-only mode and starts a lazy session. */
  private mutate(): SessionBag {
    this.assertChangeable();
    if (!this.materialized) {
      if (this.id === null) this.id = generateSessionId();
      if (this.meta === null) this.meta = this.freshMeta();
      this.materialized = true;
    }
    return this.bag;
  }

  /** assertWritable, and no save() in flight. */
  private assertChangeable(): void {
    this.assertWritable();
    if (this.saving !== null) {
      throw new SessionException('A save() of this session is still running: await session.save() before changing the session again.');
    }
  }

  private assertWritable(): void {
    if (this.readOnly) {
      throw new SessionException('This route reads the session only (@SessionReadOnly()): remove the decorator to change the session here.');
    }
    if (this.finished) {
      throw new SessionException('The session was already committed for this request; change it before the response is sent.');
    }
  }

  private freshMeta(): SessionMeta {
    const now = Date.now();
    return {
      createdAt: now,
      lastActivity: now,
      expiresAt: now + this.host.absoluteTimeoutMs,
      userId: null,
      ipAddress: this.facts.ip,
      userAgent: this.facts.userAgent,
      csrfToken: null,
    };
  }
}
