import type { SessionDriver } from '../contracts/session-driver.interface.js';
import type { SessionSerializer } from '../contracts/session-serializer.interface.js';
import type {
  CookieOptions,
  DatabaseDriverOptions,
  FileDriverOptions,
  RedisDriverOptions,
  SessionDriverName,
  SessionModuleOptions,
} from '../contracts/session-options.interface.js';
import type { Type } from '@nestjs/common';
import { parseKey } from '../contracts/encryption-key.js';

/** Thrown at start-up for a bad option; the message names the option and says what is allowed. */
export class SessionOptionsError extends Error {
  constructor(option: string, problem: string) {
    super(`Invalid session option "${option}": ${problem}`);
    this.name = 'SessionOptionsError';
  }
}

/** Options with every default filled in and times converted to milliseconds. */
export interface ResolvedSessionOptions {
  driver: SessionDriverName | Type<SessionDriver> | SessionDriver;
  file: FileDriverOptions;
  database: DatabaseDriverOptions;
  redis: RedisDriverOptions;
  cookie: Required<Omit<CookieOptions, 'domain'>> & { domain: string | undefined };
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  fingerprint: { userAgent: boolean; ip: 'strict' | 'relaxed' };
  /** How many proxies are trusted: 0 none, Infinity all (`trustProxy: true`). */
  trustProxy: number;
  lock: { enabled: boolean; waitMs: number; ttlMs: number };
  csrf: { global: boolean; xsrfCookie: boolean; allowSameSite: boolean; except: Array<string | RegExp> };
  noStore: boolean;
  encryption: { keys: string[] };
  gcIntervalMs: number;
  maxPayloadBytes: number;
  serializer: SessionSerializer | undefined;
}

const TOP_LEVEL = new Set([
  'driver', 'file', 'database', 'redis', 'cookie', 'idleTimeout', 'absoluteTimeout', 'fingerprint', 'trustProxy',
  'lock', 'csrf', 'encryption', 'gc', 'maxPayloadBytes', 'serializer', 'noStore',
]);
const NESTED: Record<string, Set<string>> = {
  file: new Set(['path']),
  database: new Set(['dataSource', 'url', 'table', 'statementTimeout']),
  redis: new Set(['url', 'options', 'client', 'cluster', 'keyPrefix']),
  cookie: new Set(['name', 'secure', 'httpOnly', 'sameSite', 'path', 'domain', 'partitioned', 'persistent']),
  fingerprint: new Set(['userAgent', 'ip']),
  lock: new Set(['enabled', 'waitTimeout', 'ttl']),
  csrf: new Set(['global', 'xsrfCookie', 'allowSameSite', 'except']),
  encryption: new Set(['keys']),
  gc: new Set(['interval']),
};
const DRIVER_NAMES = ['memory', 'file', 'database', 'redis'];
// RFC 6265 cookie-name token characters.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function resolveSessionOptions(input: SessionModuleOptions | undefined | null): ResolvedSessionOptions {
  const o = (input ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || Array.isArray(o)) throw new SessionOptionsError('(root)', 'expected an options object.');
  for (const key of Object.keys(o)) {
    if (!TOP_LEVEL.has(key)) throw new SessionOptionsError(key, `unknown option; known options are ${[...TOP_LEVEL].join(', ')}.`);
    const allowed = NESTED[key];
    const value = o[key];
    if (allowed && value !== undefined) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SessionOptionsError(key, 'expected an object.');
      for (const sub of Object.keys(value)) {
        if (!allowed.has(sub)) throw new SessionOptionsError(`${key}.${sub}`, `unknown option; known ${key} options are ${[...allowed].join(', ')}.`);
      }
    }
  }
  const opts = input ?? {};

  const driver = opts.driver ?? 'file';
  if (typeof driver === 'string' && !DRIVER_NAMES.includes(driver)) {
    throw new SessionOptionsError('driver', `"${driver}" is not a driver; use ${DRIVER_NAMES.join(', ')}, a SessionDriver class or an instance.`);
  }
  if (typeof driver !== 'string' && typeof driver !== 'function' && (typeof driver !== 'object' || driver === null)) {
    throw new SessionOptionsError('driver', 'expected a driver name, a SessionDriver class or an instance.');
  }

  const c = opts.cookie ?? {};
  const name = c.name ?? 'ML_SESS';
  if (typeof name !== 'string') throw new SessionOptionsError('cookie.name', `expected a string, got ${JSON.stringify(name)}.`);
  if (!COOKIE_NAME.test(name)) throw new SessionOptionsError('cookie.name', `"${name}" is not a valid cookie name (RFC 6265 token characters only).`);
  const sameSite = c.sameSite ?? 'lax';
  if (!['lax', 'strict', 'none'].includes(sameSite)) throw new SessionOptionsError('cookie.sameSite', `expected 'lax', 'strict' or 'none', got ${JSON.stringify(sameSite)}.`);
  const secure = c.secure ?? 'auto';
  if (secure !== true && secure !== false && secure !== 'auto') throw new SessionOptionsError('cookie.secure', `expected true, false or 'auto', got ${JSON.stringify(secure)}.`);
  const path = c.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/') || /[;\s]/.test(path)) throw new SessionOptionsError('cookie.path', 'expected a path starting with "/" without ";" or spaces.');
  if (c.domain !== undefined && (typeof c.domain !== 'string' || !/^\.?[A-Za-z0-9.-]+$/.test(c.domain))) {
    throw new SessionOptionsError('cookie.domain', 'expected a host name such as "example.com".');
  }
  if (sameSite === 'none' && secure !== true) {
    throw new SessionOptionsError('cookie.sameSite', "'none' requires cookie.secure: true (browsers drop SameSite=None cookies without Secure).");
  }
  if (name.startsWith('__Host-')) {
    if (secure !== true) throw new SessionOptionsError('cookie.secure', 'a __Host- cookie must set secure: true.');
    if (path !== '/') throw new SessionOptionsError('cookie.path', 'a __Host- cookie must use path "/".');
    if (c.domain !== undefined) throw new SessionOptionsError('cookie.domain', 'a __Host- cookie must not set a domain.');
  }
  if (name.startsWith('__Secure-') && secure !== true) throw new SessionOptionsError('cookie.secure', 'a __Secure- cookie must set secure: true.');
  const partitioned = bool(c.partitioned, false, 'cookie.partitioned');
  if (partitioned && secure !== true) throw new SessionOptionsError('cookie.partitioned', 'a Partitioned cookie requires cookie.secure: true.');

  const idle = sessionSeconds(opts.idleTimeout, 1800, 'idleTimeout');
  const absolute = sessionSeconds(opts.absoluteTimeout, 43200, 'absoluteTimeout');

  const f = opts.fingerprint ?? {};
  const ip = f.ip ?? 'relaxed';
  if (ip !== 'strict' && ip !== 'relaxed') throw new SessionOptionsError('fingerprint.ip', `expected 'strict' or 'relaxed', got ${JSON.stringify(ip)}.`);

  const l = opts.lock ?? {};
  const waitSeconds = timerSeconds(l.waitTimeout, 10, 'lock.waitTimeout', true);
  const ttlSeconds = timerSeconds(l.ttl, 30, 'lock.ttl');

  const gcInterval = timerSeconds(opts.gc?.interval, 600, 'gc.interval', true);
  const maxPayloadBytes = opts.maxPayloadBytes ?? 65536;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 256) throw new SessionOptionsError('maxPayloadBytes', 'expected an integer of at least 256.');

  const keys = opts.encryption?.keys ?? [];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new SessionOptionsError('encryption.keys', 'expected an array of base64 or hex strings.');
  // Checked here, before any provider runs: a bad key found later would leave an opened driver behind.
  keys.forEach((k, i) => {
    try {
      parseKey(k, `key ${i}`);
    } catch (err) {
      throw new SessionOptionsError(`encryption.keys[${i}]`, (err as Error).message);
    }
  });


  const csrfExcept = opts.csrf?.except ?? [];
  if (!Array.isArray(csrfExcept) || csrfExcept.some((r) => typeof r !== 'string' && !(r instanceof RegExp))) {
    throw new SessionOptionsError('csrf.except', 'expected an array of path strings or RegExps.');
  }
  if (name.length > 200) throw new SessionOptionsError('cookie.name', 'keep it under 200 characters (name + value must stay under 4096 bytes).');

  const serializer = opts.serializer;
  if (serializer !== undefined && ((typeof serializer !== 'object' && typeof serializer !== 'function') || serializer === null || typeof serializer.serialize !== 'function' || typeof serializer.deserialize !== 'function')) {
    throw new SessionOptionsError('serializer', 'expected an object with serialize() and deserialize().');
  }

  return {
    driver,
    file: { path: opts.file?.path ?? './storage/sessions' },
    database: { ...opts.database, table: opts.database?.table ?? 'sessions' },
    redis: { ...opts.redis, keyPrefix: opts.redis?.keyPrefix ?? 'ml_sess:' },
    cookie: {
      name,
      secure,
      httpOnly: bool(c.httpOnly, true, 'cookie.httpOnly'),
      sameSite,
      path,
      domain: c.domain,
      partitioned,
      persistent: bool(c.persistent, false, 'cookie.persistent'),
    },
    // Whole milliseconds, so that the times stored in a record are too (BIGINT columns keep no fraction).
    idleTimeoutMs: Math.max(1, Math.round(idle * 1000)),
    absoluteTimeoutMs: Math.max(1, Math.round(absolute * 1000)),
    fingerprint: { userAgent: bool(f.userAgent, true, 'fingerprint.userAgent'), ip },
    trustProxy: trustedProxies(opts.trustProxy),
    lock: { enabled: bool(l.enabled, true, 'lock.enabled'), waitMs: waitSeconds * 1000, ttlMs: ttlSeconds * 1000 },
    csrf: {
      global: bool(opts.csrf?.global, false, 'csrf.global'),
      xsrfCookie: bool(opts.csrf?.xsrfCookie, false, 'csrf.xsrfCookie'),
      allowSameSite: bool(opts.csrf?.allowSameSite, false, 'csrf.allowSameSite'),
      except: csrfExcept,
    },
    noStore: bool(opts.noStore, false, 'noStore'),
    encryption: { keys },
    gcIntervalMs: gcInterval * 1000,
    maxPayloadBytes,
    serializer,
  };
}

function seconds(value: unknown, fallback: number, option: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new SessionOptionsError(option, `expected a ${allowZero ? 'non-negative' : 'positive'} number of seconds, got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** Node runs a timer of more than 2^31 - 1 ms after 1 ms instead (with only a warning). */
const MAX_TIMER_SECONDS = Math.floor(2147483647 / 1000);
/** 100 years: stored times (ms since 1970, BIGINT columns, Redis TTLs) stay far from any limit. */
const MAX_SESSION_SECONDS = 100 * 365 * 24 * 3600;

/** An option that ends up as a timer's delay: {@link seconds}, at most ~24.8 days. */
function timerSeconds(value: unknown, fallback: number, option: string, allowZero = false): number {
  return capped(seconds(value, fallback, option, allowZero), MAX_TIMER_SECONDS, "Node's timers can wait", 'about 24.8 days', option);
}

/** A session lifetime: {@link seconds}, at most 100 years (more overflows the stores' time columns). */
function sessionSeconds(value: unknown, fallback: number, option: string): number {
  return capped(seconds(value, fallback, option), MAX_SESSION_SECONDS, 'a session may live', '100 years', option);
}

function capped(s: number, max: number, what: string, readable: string, option: string): number {
  if (s > max) throw new SessionOptionsError(option, `${s} seconds is more than ${what} (${max} s, ${readable}); use a smaller value.`);
  return s;
}

function trustedProxies(value: unknown): number {
  if (value === undefined || value === false) return 0;
  if (value === true) return Number.POSITIVE_INFINITY;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw new SessionOptionsError('trustProxy', `expected true, false or the number of proxies in front of the app (an integer ≥ 0), got ${JSON.stringify(value)}.`);
}

function bool(value: unknown, fallback: boolean, option: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new SessionOptionsError(option, `expected true or false, got ${JSON.stringify(value)}.`);
  return value;
}
