import type { SessionDriver } from './session-driver.interface.js';
import type { SessionSerializer } from './session-serializer.interface.js';
import type { ModuleMetadata, Type, InjectionToken, OptionalFactoryDependency } from '@nestjs/common';

export type SessionDriverName = 'memory' | 'file' | 'database' | 'redis';

export interface FileDriverOptions {
  /** Directory holding one file per session (created with mode 0700). Default `./storage/sessions`. */
  path?: string;
}

export interface DatabaseDriverOptions {
  /** An initialized or uninitialized TypeORM `DataSource` of the application. Default: none. */
  dataSource?: unknown;
  /** A URL (`postgres://…`, `mysql://…`, `mariadb://…`, `sqlite:path`) to build a DataSource from. Default: none. */
  url?: string;
  /** Table name. Default `sessions`. */
  table?: string;
  /**
   * Seconds one statement may take, waiting for a pooled connection included, before the call
   * fails with 503 (PostgreSQL, MySQL/MariaDB; SQLite is bounded by its busy timeout). A
   * PostgreSQL connection that timed out is closed, not pooled again; the pool built from `url`
   * also sets PostgreSQL's `statement_timeout` to it. Default `5`.
   */
  statementTimeout?: number;
}

export interface RedisDriverOptions {
  /** `redis://…` URL. Default: none (then `options`, `client` or `cluster` must be set). */
  url?: string;
  /** ioredis options (host, port, sentinels, name, password, …). Default: none. */
  options?: Record<string, unknown>;
  /** An existing ioredis `Redis` or `Cluster` client; the module never quits it. Default: none. */
  client?: unknown;
  /** Cluster start-up nodes, e.g. `[{ host: '127.0.0.1', port: 7000 }]`. Default: none. */
  cluster?: Array<{ host: string; port: number }>;
  /** Prefix of every key. Default `ml_sess:`. */
  keyPrefix?: string;
}

export interface CookieOptions {
  /** Cookie name (RFC 6265 token characters). Default `ML_SESS`. A `__Host-` name requires `secure: true`, `path: '/'` and no `domain`, a `__Secure-` name `secure: true`: start-up fails otherwise. */
  name?: string;
  /** `true`, `false`, or `'auto'` (Secure when the request is HTTPS, honouring `trustProxy`). Default `'auto'`. */
  secure?: boolean | 'auto';
  /** Default `true`. */
  httpOnly?: boolean;
  /** Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /** Default `/`. */
  path?: string;
  /** Default: none (host-only cookie). */
  domain?: string;
  /** CHIPS `Partitioned` attribute. Default `false`. */
  partitioned?: boolean;
  /** `true` sends `Expires` = the absolute cutoff; `false` sends a browser-session cookie. Default `false`. */
  persistent?: boolean;
}

export interface FingerprintOptions {
  /** Kill the session when the User-Agent changes. Default `true`. */
  userAgent?: boolean;
  /** `strict` kills the session when the client IP changes; `relaxed` ignores IP changes. Default `relaxed`. */
  ip?: 'strict' | 'relaxed';
}

export interface LockConfig {
  /** Serialize requests of one session. Default `true`. */
  enabled?: boolean;
  /** Seconds to wait for the lock before answering 423. Default `10`. */
  waitTimeout?: number;
  /** Seconds a lock lives if its holder dies. Default `30`. */
  ttl?: number;
}

export interface CsrfOptions {
  /** Register `CsrfGuard` as a global guard. Default `false`. */
  global?: boolean;
  /** Also send a script-readable `XSRF-TOKEN` cookie (Angular, axios). Default `false`. */
  xsrfCookie?: boolean;
  /** Accept `Sec-Fetch-Site: same-site` requests. Default `false`. */
  allowSameSite?: boolean;
  /**
   * Paths the guard never checks: exact strings, `'/prefix/*'`, or RegExps (webhooks, say), matched
   * against the path without its query. A RegExp is tested from the start of the path every time
   * (its `lastIndex` is reset, so `g` changes nothing and `y` anchors it there). Default `[]`.
   */
  except?: Array<string | RegExp>;
}

export interface EncryptionOptions {
  /** 32-byte keys, base64 or hex. The first encrypts, all decrypt. Empty = no encryption. Default `[]`. */
  keys?: string[];
}

export interface GcOptions {
  /** Seconds between garbage collections of the file and database drivers; `0` = off. Default `600`. */
  interval?: number;
}

export interface SessionModuleOptions {
  /** Storage: a driver name, a `SessionDriver` class, or an instance. Default `'file'`. */
  driver?: SessionDriverName | Type<SessionDriver> | SessionDriver;
  file?: FileDriverOptions;
  database?: DatabaseDriverOptions;
  redis?: RedisDriverOptions;
  cookie?: CookieOptions;
  /** Seconds without a request after which the session is dead. Default `1800`. */
  idleTimeout?: number;
  /** Seconds after creation after which the session is dead, however active. Default `43200`. */
  absoluteTimeout?: number;
  fingerprint?: FingerprintOptions;
  /**
   * Which `X-Forwarded-*` headers to believe (only behind your own proxies). `false`: none, the
   * client IP is the socket's. A number N: N proxies in front of the app, each appending to
   * `X-Forwarded-For`; the client IP is the entry N from the right, so entries a client wrote
   * itself are never taken (use this behind nginx `$proxy_add_x_forwarded_for`, a cloud load
   * balancer, …). `true`: every proxy is trusted and the left-most entry is the client, which is
   * only right if your edge proxy replaces the header a client sent. Either form also believes
   * the left-most `X-Forwarded-Proto` (cookie `secure: 'auto'`) and `X-Forwarded-Host` (CSRF
   * origin check), as Express does.
   * Default `false`.
   */
  trustProxy?: boolean | number;
  lock?: LockConfig;
  csrf?: CsrfOptions;
  encryption?: EncryptionOptions;
  gc?: GcOptions;
  /** Largest serialized payload in bytes; a bigger one fails the commit and leaves the stored session unchanged. Default `65536`. */
  maxPayloadBytes?: number;
  /** Send `Cache-Control: no-store` on every response of a request that has a session, so shared caches never keep it. Default `false`. */
  noStore?: boolean;
  /** A custom serializer (the `EncryptedSerializer` wraps it when keys are set). Default `JsonSerializer`. */
  serializer?: SessionSerializer;
}

export interface SessionOptionsFactory {
  createSessionOptions(): SessionModuleOptions | Promise<SessionModuleOptions>;
}

export interface SessionModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => SessionModuleOptions | Promise<SessionModuleOptions>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useClass?: Type<SessionOptionsFactory>;
  useExisting?: Type<SessionOptionsFactory>;
}
