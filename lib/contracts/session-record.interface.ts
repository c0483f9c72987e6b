/**
 * What a driver stores for one session. Times are epoch milliseconds.
 */
export interface SessionMeta {
  /** When the session was first created. */
  createdAt: number;
  /** Last request that used the session (refreshed at commit, throttled for read-only requests). */
  lastActivity: number;
  /** Absolute cutoff (`createdAt + absoluteTimeout`): the session is dead after it, whatever its activity. */
  expiresAt: number;
  /** The signed-in user, if any (string or number IDs are stored as strings). */
  userId: string | null;
  /** Client IP seen when the session was created or last validated. */
  ipAddress: string | null;
  /** User-Agent seen when the session was created. */
  userAgent: string | null;
  /** The per-session CSRF token, created lazily. */
  csrfToken: string | null;
}

export interface SessionRecord {
  /** The serialized payload (data + flash bookkeeping), produced by a `SessionSerializer`. */
  payload: string;
  meta: SessionMeta;
  /**
   * Epoch ms after which the store may drop the record: `min(lastActivity + idleTimeout, expiresAt)`
   * plus a grace of `min(idleTimeout, 5 min)` (the session manager itself declares the session dead
   * at the end of its timeouts; the grace lets it still tell "expired" from "unknown").
   * Drivers read a record past this instant as absent, `gc()` deletes it, and Redis uses it as the key TTL.
   */
  evictAt: number;
}

/** A summary of one session, as returned by `listByUser`. */
export interface SessionSummary {
  id: string;
  meta: SessionMeta;
}
