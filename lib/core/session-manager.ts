import { Inject, Injectable, Logger } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { SessionDriver } from '../contracts/session-driver.interface.js';
import { SessionSerializer } from '../contracts/session-serializer.interface.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../contracts/session-exception.js';
import type { SessionEvent, SessionEventType } from '../contracts/session-event.interface.js';
import type { SessionMeta, SessionRecord } from '../contracts/session-record.interface.js';
import { isValidSessionId } from '../contracts/session-id.js';
import { SessionBag } from './session-bag.js';
import { LocalLockQueue, type LocalTurn } from './local-lock-queue.js';
import { SessionHandle, type LockBaton, type SessionHandleHost } from './session-handle.js';
import { describeError, sessionRef } from './session-id.util.js';
import type { RequestFacts } from './request-facts.interface.js';
import type { ResolvedSessionOptions } from './session-options.resolver.js';
import { SESSION_RESOLVED_OPTIONS } from './session.constants.js';

/** A session of a user as `listByUser` shows it. `ref` is safe to show in a browser; `id` is not. */
export interface UserSessionSummary {
  id: string;
  /** Short hash of the ID: show this to browsers, never `id`. */
  ref: string;
  createdAt: Date;
  lastActivity: Date;
  ipAddress: string | null;
  userAgent: string | null;
}

/** At most one log line per this long while the store does not answer (see `reportUnavailable`). */
const UNAVAILABLE_REPORT_MS = 10_000;

/**
 * Orchestrates bag, driver and serializer: start (lock + read + checks) and commit (write +
 * unlock). A singleton that keeps no per-request state: everything about one request lives
 * in its `SessionHandle`.
 */
@Injectable()
export class SessionManager implements SessionHandleHost {
  private readonly logger = new Logger('Session');
  private readonly subject = new Subject<SessionEvent>();
  /** When a store-unavailable failure was last logged, and how many went unlogged since (process-wide, not per request). */
  private unavailableReportedAt = 0;
  private unavailableUnreported = 0;
  /** Session life events (no raw IDs or data): created, regenerated, invalidated, expired, fingerprint-mismatch, lock-timeout, csrf-failure. */
  readonly events$: Observable<SessionEvent> = this.subject.asObservable();
  readonly absoluteTimeoutMs: number;
  private readonly touchAfterMs: number;
  private readonly evictGraceMs: number;
  /** Coordination between this process's requests of one session (holds no session data). */
  private readonly localQueue = new LocalLockQueue<LockBaton>();

  constructor(
    @Inject(SESSION_RESOLVED_OPTIONS) private readonly options: ResolvedSessionOptions,
    @Inject(SessionDriver) private readonly driver: SessionDriver,
    @Inject(SessionSerializer) private readonly serializer: SessionSerializer,
  ) {
    this.absoluteTimeoutMs = options.absoluteTimeoutMs;
    // A request that changes nothing rewrites the record only when lastActivity is this stale:
    // it bounds idle-timeout drift to 10% (at most a minute) and spares the store a write per read.
    this.touchAfterMs = Math.min(60_000, options.idleTimeoutMs / 10);
    // Stores keep a dead record a little past its death so that start() can tell "expired"
    // (event, cookie removal) from "unknown ID"; the exact timeouts are enforced here on read.
    this.evictGraceMs = Math.min(300_000, options.idleTimeoutMs);
  }

  /**
   * Begins a request's session. With a well-formed cookie ID: lock (unless read-only) and read,
   * then enforce timeouts and fingerprint; any failure leaves a fresh, lazy session.
   * Store failures throw (503): they never turn into "no session".
   */
  async start(facts: RequestFacts, readOnly: boolean): Promise<SessionHandle> {
    const handle = new SessionHandle(this, facts, readOnly);
    const id = facts.cookieId;
    if (id === null || !isValidSessionId(id)) return handle;

    const lock = !readOnly && this.options.lock.enabled;
    const started = Date.now();
    const turn = lock ? (this.localQueue.tryAcquire(id) ?? (await this.localTurn(id))) : null;
    const lockOptions = { waitMs: Math.max(0, this.options.lock.waitMs - (Date.now() - started)), ttlMs: this.options.lock.ttlMs };
    let record: SessionRecord | null;
    let token: string | null = null;
    try {
      if (turn?.baton) {
        // The previous request of this session in this process kept the store lock for us.
        ({ token, record } = turn.baton);
      } else if (!lock) {
        record = await this.driver.read(id);
      } else if (this.driver.lockAndRead) {
        ({ token, record } = await this.driver.lockAndRead(id, lockOptions));
      } else {
        token = await this.driver.lock(id, lockOptions);
        try {
          record = await this.driver.read(id);
        } catch (err) {
          await this.quietUnlock(id, token);
          throw err;
        }
      }
    } catch (err) {
      turn?.release();
      if (err instanceof SessionLockException) {
        this.emitFor('lock-timeout', id, null);
        throw err;
      }
      throw this.storeError(err, 'read');
    }

    if (record === null) {
      if (token !== null) await this.quietUnlock(id, token);
      turn?.release();
      return handle;
    }
    const rejection = this.check(record.meta, facts);
    let bag: SessionBag | null = null;
    if (rejection === null) {
      try {
        bag = SessionBag.fromPayload(this.serializer.deserialize(record.payload, id, record.meta));
      } catch {
        this.logger.warn(`Stored session ${sessionRef(id)} could not be decoded (corrupt, tampered or encrypted with an unknown key); starting a fresh session.`);
      }
    } else {
      this.emitFor(rejection.type, id, record.meta.userId, rejection.reason);
    }
    if (bag === null) {
      handle.dropCookie = true;
      // Dead or unreadable: remove it while we hold its lock, so it can never be resumed.
      if (token !== null) {
        try {
          await this.driver.destroy(id);
        } catch (err) {
          this.logger.warn(`Could not destroy dead session ${sessionRef(id)}: ${describeError(err)}`);
        } finally {
          await this.quietUnlock(id, token);
        }
      }
      turn?.release();
      return handle;
    }
    handle.load(id, record.meta, bag);
    if (token !== null) {
      handle.lockedId = id;
      handle.lockToken = token;
      handle.localTurn = turn;
      handle.loadedRecord = record;
      this.keepLockAlive(handle);
    } else {
      turn?.release();
    }
    return handle;
  }

  /**
   * Writes what changed and, when `final`, ages flash data and releases the lock (always,
   * even when the write fails). Payload-size and lock-loss errors leave the stored record unchanged.
   */
  async persist(handle: SessionHandle, final: boolean): Promise<void> {
    if (handle.finished) return;
    if (final) {
      handle.finished = true;
      // A save() the handler did not await: let its write land first (its error went to its caller).
      await this.settleSaves(handle);
    }
    if (handle.readOnly) return;
    try {
      if (final) handle.bag.ageFlash();
      const handOver = final && this.mayHandOver(handle);
      const written = await this.writeIfDue(handle, final, handOver);
      if (handOver && written === null && handle.loadedRecord !== null) {
        // Nothing to write: the record read at start is still the stored one.
        if (await this.driver.extend!(handle.lockedId!, handle.lockToken!, this.options.lock.ttlMs)) handle.baton = handle.loadedRecord;
      }
      // Old IDs (regenerate/invalidate) go only after the new record is safely stored: a failed
      // commit must not leave the user with neither session.
      while (handle.pendingDestroy.length > 0) {
        await this.driver.destroy(handle.pendingDestroy[0]);
        handle.pendingDestroy.shift();
      }
    } catch (err) {
      throw this.storeError(err, 'write');
    } finally {
      if (final) {
        this.stopRenewal(handle);
        await this.endLock(handle);
      }
    }
  }

  /**
   * Whether the commit may keep the store lock and hand it, with the record, to the next request
   * of this session waiting in this process, instead of unlocking for it to lock again: on a hot
   * session one store round trip per request (write + renew) instead of two (write + unlock, then
   * lock + read). Only for the plain case (same ID, nothing to destroy) and drivers that can
   * renew a lock, since the next holder's time starts now.
   */
  private mayHandOver(handle: SessionHandle): boolean {
    return (
      handle.lockToken !== null &&
      handle.lockedId === handle.id &&
      handle.pendingDestroy.length === 0 &&
      this.driver.extend !== undefined &&
      this.localQueue.hasWaiter(handle.lockedId!)
    );
  }

  /**
   * Ends the request's hold on its session, on every path (commit, release, downgrade): hands the
   * store lock to the next local request if the commit prepared a baton, else unlocks; then ends
   * the local turn.
   */
  private async endLock(handle: SessionHandle): Promise<void> {
    const { lockedId, lockToken, baton, localTurn } = handle;
    handle.lockToken = null;
    handle.baton = null;
    handle.loadedRecord = null;
    handle.localTurn = null;
    // A copy: the next request mutates its metadata in place.
    if (lockToken !== null && baton !== null && localTurn?.release({ token: lockToken, record: { ...baton, meta: { ...baton.meta } } })) return;
    if (lockToken !== null) await this.quietUnlock(lockedId!, lockToken);
    localTurn?.release();
  }

  /** Writes the record when something changed (or the activity stamp is stale); returns what it stored, or null. */
  private async writeIfDue(handle: SessionHandle, final: boolean, handOver: boolean): Promise<SessionRecord | null> {
    if (handle.id === null || !handle.materialized || handle.meta === null) return null;
    const now = Date.now();
    const due = !handle.stored || handle.bag.isDirty || handle.metaDirty || now - handle.meta.lastActivity >= this.touchAfterMs;
    if (!due) return null;

    const id = handle.id;
    const meta: SessionMeta = { ...handle.meta, lastActivity: now, ipAddress: handle.meta.ipAddress ?? handle.facts.ip };
    let payload: string;
    try {
      payload = this.serializer.serialize(handle.bag.toStored() as unknown as Record<string, unknown>, id, meta);
    } catch (err) {
      // The values or a custom serializer, not the store: a 500 that says so, not a 503 "store failed".
      throw new SessionException(`The session could not be serialized (${describeError(err)}); the change was not saved. Store only values the configured serializer can encode.`, 500, { cause: err });
    }
    const size = Buffer.byteLength(payload);
    if (size > this.options.maxPayloadBytes) {
      throw new SessionException(
        `The session payload is ${size} bytes, over maxPayloadBytes (${this.options.maxPayloadBytes}); the change was not saved. Store less in the session or raise maxPayloadBytes.`,
      );
    }
    const record: SessionRecord = { payload, meta, evictAt: Math.min(now + this.options.idleTimeoutMs, meta.expiresAt) + this.evictGraceMs };
    const fenced = handle.lockToken !== null && handle.lockedId === id;
    const wasNew = !handle.stored;
    if (handOver) {
      // Both are fenced by the token and leave together (one round trip on Redis).
      const [, held] = await Promise.all([this.driver.write(id, record, handle.lockToken!), this.driver.extend!(id, handle.lockToken!, this.options.lock.ttlMs)]);
      if (held) handle.baton = record;
    } else if (final && fenced && this.driver.writeAndUnlock) {
      await this.driver.writeAndUnlock(id, record, handle.lockToken!);
      handle.lockToken = null;
    } else {
      await this.driver.write(id, record, fenced ? handle.lockToken! : undefined);
    }
    handle.meta = meta;
    handle.stored = true;
    handle.metaDirty = false;
    handle.bag.markClean();
    // What a later hand-over passes on when nothing else is due: the stored record, which after
    // a save() mid-request is no longer the one read at start.
    if (handle.loadedRecord !== null) handle.loadedRecord = record;
    // A regenerated session is not a new one: it was announced as `regenerated`.
    if (wasNew && !handle.regenerated) this.emitFor('created', id, meta.userId);
    return record;
  }

  /**
   * The route turned out to change the session although its middleware started it read-only
   * (a path pattern shared with a `@SessionReadOnly()` route): start it again, locked.
   */
  async upgrade(handle: SessionHandle): Promise<SessionHandle> {
    if (!handle.readOnly) return handle;
    handle.finished = true;
    return this.start(handle.facts, false);
  }

  /** The route is `@SessionReadOnly()` although its middleware locked: let the others in now. */
  async downgrade(handle: SessionHandle): Promise<void> {
    if (handle.readOnly) return;
    // No await between the saves landing and `readOnly`: a later save() is refused instead of
    // losing its write to the unlock.
    await this.settleSaves(handle);
    this.warnDiscarded(handle, 'the route is @SessionReadOnly(), so what a guard or middleware changed before it is not written. Await session.save() there, or remove @SessionReadOnly().');
    this.stopRenewal(handle);
    handle.readOnly = true;
    await this.endLock(handle);
  }

  /**
   * Releases the lock without committing: the handler never ran (guard rejection, 404, a client
   * gone), or its result was dropped unfinished (`dropped`). Only a save() already asked for lands.
   */
  async release(handle: SessionHandle, why: 'no-handler' | 'dropped' = 'no-handler'): Promise<void> {
    await this.settleSaves(handle);
    this.warnDiscarded(
      handle,
      why === 'dropped'
        ? 'the handler\'s result was dropped before it finished (an outer timeout(), a closed event stream), so nothing was committed.'
        : 'the request ended before a handler ran (a guard rejected it, no route matched, the client left, or it is not an HTTP route such as GraphQL). Change the session in handlers.',
    );
    handle.finished = true;
    this.stopRenewal(handle);
    await this.endLock(handle);
  }

  /**
   * Lets save()s in flight land under the lock (a guard's, not awaited), and any started as one
   * settled. Each write is bounded by the driver's deadline.
   */
  private async settleSaves(handle: SessionHandle): Promise<void> {
    while (handle.saving !== null) await handle.saving.catch(() => undefined);
  }

  /** Changes that will not be written are logged: losing them silently hides a bug in the app. */
  private warnDiscarded(handle: SessionHandle, why: string): void {
    if (handle.finished || handle.readOnly) return;
    if (!handle.bag.isDirty && !handle.metaDirty && handle.pendingDestroy.length === 0) return;
    this.logger.warn(`Changes to session ${sessionRef(handle.id)} were discarded: ${why}`);
  }

  /**
   * Creates and stores a session outside any request (test set-ups, impersonation tools).
   * `flash` values behave as if flashed by the previous request: readable in the next one.
   * The stored fingerprint is `userAgent`/`ipAddress`: requests must send the same User-Agent.
   */
  async create(init: {
    data?: Record<string, unknown>;
    flash?: Record<string, unknown>;
    userId?: string | number | null;
    userAgent?: string | null;
    ipAddress?: string | null;
  } = {}): Promise<{ id: string; csrfToken: string }> {
    const handle = new SessionHandle(this, { cookieId: null, hadCookie: false, ip: init.ipAddress ?? null, userAgent: init.userAgent ?? null }, false);
    for (const [key, value] of Object.entries(init.data ?? {})) handle.set(key, value);
    for (const [key, value] of Object.entries(init.flash ?? {})) handle.flash(key, value);
    if (init.userId !== undefined) handle.setUserId(init.userId);
    const csrfToken = handle.csrfToken();
    await this.persist(handle, true);
    return { id: handle.id!, csrfToken };
  }

  /** The user's live sessions (for a "your devices" page). */
  async listByUser(userId: string | number): Promise<UserSessionSummary[]> {
    const list = await this.driver.listByUser(String(userId));
    const now = Date.now();
    // Stores keep dead records for evictGraceMs: a request would not resume them, so neither list them.
    return list
      .filter(({ meta }) => this.timedOut(meta, now) === null)
      .map(({ id, meta }) => ({
        id,
        ref: sessionRef(id)!,
        createdAt: new Date(meta.createdAt),
        lastActivity: new Date(meta.lastActivity),
        ipAddress: meta.ipAddress,
        userAgent: meta.userAgent,
      }))
      .sort((a, b) => b.lastActivity.getTime() - a.lastActivity.getTime());
  }

  /**
   * "Sign out everywhere (else)": destroys the user's sessions except `except`; resolves to how
   * many records it removed (an expired one the store still kept counts too).
   */
  async destroyByUser(userId: string | number, options: { except?: string | null } = {}): Promise<number> {
    return this.driver.destroyByUser(String(userId), options.except ?? undefined);
  }

  /** For SessionHandle: a misuse no caller may hear about (the message names no session data). */
  warn(message: string): void {
    this.logger.warn(message);
  }

  emit(type: SessionEventType, handle: SessionHandle, reason?: string): void {
    this.emitFor(type, handle.id, handle.meta?.userId ?? null, reason);
  }

  /** For other parts of the library (the CSRF guard) to report an event. */
  emitFor(type: SessionEventType, id: string | null, userId: string | null, reason?: string): void {
    const event: SessionEvent = { type, sessionRef: sessionRef(id), userId, at: Date.now() };
    if (reason !== undefined) event.reason = reason;
    this.subject.next(event);
  }

  private timedOut(meta: SessionMeta, now: number): 'absolute' | 'idle' | null {
    if (now >= meta.expiresAt) return 'absolute';
    if (now >= meta.lastActivity + this.options.idleTimeoutMs) return 'idle';
    return null;
  }

  private check(meta: SessionMeta, facts: RequestFacts): { type: SessionEventType; reason: string } | null {
    const timeout = this.timedOut(meta, Date.now());
    if (timeout !== null) return { type: 'expired', reason: timeout };
    if (this.options.fingerprint.userAgent && (meta.userAgent ?? null) !== (facts.userAgent ?? null)) {
      return { type: 'fingerprint-mismatch', reason: 'user-agent' };
    }
    if (this.options.fingerprint.ip === 'strict' && (meta.ipAddress ?? null) !== (facts.ip ?? null)) {
      return { type: 'fingerprint-mismatch', reason: 'ip' };
    }
    return null;
  }

  /**
   * While a request holds the lock, renew it every third of its TTL, so a slow handler keeps
   * its lock instead of being overtaken (and then having its commit refused) after `lock.ttl`.
   * A holder that dies stops renewing; a handler that hangs is renewed for at most 10 × ttl.
   * Whenever the store lock lapses, this process's next request gets its turn too.
   */
  private keepLockAlive(handle: SessionHandle): void {
    const ttlMs = this.options.lock.ttlMs;
    const giveUp = (): void => {
      this.stopRenewal(handle);
      this.passTurn(handle);
    };
    const extend = this.driver.extend?.bind(this.driver);
    if (!extend) {
      handle.renewTimer = setTimeout(giveUp, ttlMs);
      handle.renewTimer.unref();
      return;
    }
    const until = Date.now() + 10 * ttlMs;
    handle.renewTimer = setInterval(() => {
      const { lockedId, lockToken } = handle;
      if (lockedId === null || lockToken === null) return this.stopRenewal(handle);
      if (Date.now() > until) return giveUp();
      extend(lockedId, lockToken, ttlMs).then(
        (held) => held || giveUp(),
        (err: unknown) => this.logger.warn(`Could not renew the lock of session ${sessionRef(lockedId)}: ${describeError(err, lockToken)}`),
      );
    }, Math.max(50, ttlMs / 3));
    handle.renewTimer.unref();
  }

  private stopRenewal(handle: SessionHandle): void {
    if (handle.renewTimer !== null) clearTimeout(handle.renewTimer);
    handle.renewTimer = null;
  }

  /** Waits for this process's turn on `id`; a timeout here is a lock timeout like any other. */
  private async localTurn(id: string): Promise<LocalTurn<LockBaton>> {
    try {
      return await this.localQueue.acquire(id, this.options.lock.waitMs);
    } catch (err) {
      this.emitFor('lock-timeout', id, null);
      throw err;
    }
  }

  /** The lock is gone: let this process's next request of the session in (it takes the store lock itself). */
  private passTurn(handle: SessionHandle): void {
    const turn = handle.localTurn;
    handle.localTurn = null;
    turn?.release();
  }

  private async quietUnlock(id: string, token: string): Promise<void> {
    try {
      await this.driver.unlock(id, token);
    } catch (err) {
      // The lock's TTL frees it anyway; failing the response for it would lose nothing but availability.
      this.logger.warn(`Could not release the lock of session ${sessionRef(id)} (it expires by its TTL): ${describeError(err, token)}`);
    }
  }

  private storeError(err: unknown, op: string): SessionException {
    if (err instanceof SessionStoreUnavailableException) {
      this.reportUnavailable(err, op);
      return err;
    }
    if (err instanceof SessionException) return err;
    this.logger.error(`Session store ${op} failed: ${describeError(err)}`);
    return new SessionStoreUnavailableException(undefined, { cause: err });
  }

  /**
   * A store that does not answer fails every request until it is back: one line per
   * UNAVAILABLE_REPORT_MS says so (with how many failures it stands for), not one per request.
   */
  private reportUnavailable(err: SessionStoreUnavailableException, op: string): void {
    const now = Date.now();
    if (now - this.unavailableReportedAt < UNAVAILABLE_REPORT_MS) {
      this.unavailableUnreported++;
      return;
    }
    const more = this.unavailableUnreported > 0 ? ` (and ${this.unavailableUnreported} more such failures since the last report)` : '';
    this.unavailableReportedAt = now;
    this.unavailableUnreported = 0;
    this.logger.error(`Session store ${op} failed: ${describeError(err)}${more}`);
  }
}
