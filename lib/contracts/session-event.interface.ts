export type SessionEventType =
  | 'created'
  | 'regenerated'
  | 'invalidated'
  | 'expired'
  | 'fingerprint-mismatch'
  | 'lock-timeout'
  | 'csrf-failure';

/**
 * An event on `SessionManager.events$`. It never carries a raw session ID or session data:
 * `sessionRef` is a short hash of the ID, enough to correlate log lines.
 */
export interface SessionEvent {
  type: SessionEventType;
  /** First 12 hex characters of SHA-256(session ID). */
  sessionRef: string | null;
  /** The user the session belonged to, when known. */
  userId: string | null;
  /** Epoch ms. */
  at: number;
  /**
   * For `expired`: `idle` or `absolute`; for `fingerprint-mismatch`: `user-agent` or `ip`; for
   * `invalidated`: `user` when a user was signed in; for `csrf-failure`: `cross-site`, `same-site`,
   * `origin`, `no-session`, `no-token` or `mismatch`.
   */
  reason?: string;
}
