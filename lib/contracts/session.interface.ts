/**
 * Typed session data. Extend it in your application with declaration merging:
 *
 * ```ts
 * declare module '@monkeyslegion/nestjs-session' {
 *   interface SessionData { cart: { items: string[] } }
 * }
 * ```
 * Keys declared here get typed `get`/`set`; other keys (and dot paths) stay `unknown`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface SessionData {}

type Known<K> = K extends keyof SessionData ? SessionData[K] : unknown;

/** The per-request session handle that controllers receive from `@Session()` or `req.session`. */
export interface SessionInterface {
  /** The session ID, or `null` while the session has not been started (lazy start). */
  getId(): string | null;
  /** Value at `key` (dot notation: `user.profile.name`), or `defaultValue`. */
  get<K extends string>(key: K, defaultValue?: Known<K>): Known<K> | undefined;
  set<K extends string>(key: K, value: Known<K>): void;
  has(key: string): boolean;
  forget(key: string): void;
  /** A deep copy of all persistent data (flash data excluded). */
  all(): Record<string, unknown>;
  /** Returns the value and removes it. */
  pull<K extends string>(key: K, defaultValue?: Known<K>): Known<K> | undefined;
  /** Adds `by` (default 1) to a numeric value (missing counts as 0); returns the new value. */
  increment(key: string, by?: number): number;

  /** Flash: readable in this request and the next one, then gone. */
  flash(key: string, value: unknown): void;
  getFlash<T = unknown>(key: string, defaultValue?: T): T | undefined;
  /** Keeps all current flash data for one more request. */
  reflash(): void;
  /** Keeps these flash keys for one more request. */
  keep(...keys: string[]): void;
  /** Flash data for the current request only. */
  now(key: string, value: unknown): void;

  /** New ID, same data, new CSRF token. With `destroyOld` (default) the old ID no longer loads. */
  regenerate(destroyOld?: boolean): void;
  /** Empties the session and gives it a new ID; the old ID no longer loads. */
  invalidate(): void;
  /**
   * Commits now instead of at the end of the request (the lock stays held until the request ends).
   * Await it: until it resolves, changing the session throws (the change could not be kept
   * apart from the write in flight); concurrent saves run one after the other, and the end of
   * the request waits for a save still running. On a read-only or already committed session it
   * rejects (and logs a warning); it never throws synchronously.
   */
  save(): Promise<void>;

  /** The session's CSRF token (created on first use; at least 256 bits). */
  csrfToken(): string;
  /** Replaces the CSRF token. */
  regenerateCsrfToken(): string;

  setUserId(id: string | number | null): void;
  getUserId(): string | null;
  setIpAddress(ip: string | null): void;
  setUserAgent(ua: string | null): void;

  /** `null` until the session exists. */
  readonly createdAt: Date | null;
  readonly lastActivity: Date | null;
  readonly expiresAt: Date | null;
  /** True when this handle was opened with `@SessionReadOnly()`: reads work, changes throw. */
  readonly readOnly: boolean;
}
