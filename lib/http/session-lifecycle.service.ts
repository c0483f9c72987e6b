import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionLockException } from '../contracts/session-exception.js';
import { SessionManager } from '../core/session-manager.js';
import type { SessionHandle } from '../core/session-handle.js';
import type { ResolvedSessionOptions } from '../core/session-options.resolver.js';
import { SESSION_RESOLVED_OPTIONS } from '../core/session.constants.js';
import { readCookie, readSessionCookie, serializeCookie } from './cookie.util.js';
import { clientIp, isSecureRequest, userAgent } from './request-info.util.js';

/**
 * Request (Express `req`, or Fastify's raw `IncomingMessage`) → its session context. A WeakMap
 * rather than a property on the request: adding a property to Express' `req`/`res` took about
 * 2 µs per store in profiles (a slow-path store on objects of many shapes). Kept in the global
 * symbol registry so that two copies of this package in one process still see each other's
 * requests (the "mounted twice" check).
 */
const contexts: WeakMap<object, SessionRequestContext> = ((globalThis as { [key: symbol]: unknown })[Symbol.for('ml-session:contexts')] ??= new WeakMap()) as WeakMap<
  object,
  SessionRequestContext
>;
const XSRF_COOKIE = 'XSRF-TOKEN';

/**
 * Who finishes a request's session:
 * - `loaded`: the middleware started it; if the interceptor never runs (guard rejection, 404,
 *   a route outside Nest), the response's `close` releases the lock without writing;
 * - `handling`: the interceptor owns it and commits before the response is written;
 * - `done`: committed or released.
 */
export interface SessionRequestContext {
  handle: SessionHandle;
  phase: 'loaded' | 'handling' | 'done';
  secure: boolean;
  /** The `XSRF-TOKEN` cookie the browser sent (only read when `csrf.xsrfCookie` is on). */
  xsrfSeen: string | null;
  /** The Set-Cookie values already put on the response by a save(); null before any. */
  applied: string[] | null;
}

/** The session on a request (Express `req`, Fastify `request` or its raw `IncomingMessage`), if the middleware ran. */
export function getSessionContext(req: unknown): SessionRequestContext | undefined {
  if (typeof req !== 'object' || req === null) return undefined;
  return contexts.get(req) ?? contexts.get((req as { raw?: object }).raw as object);
}

/** The HTTP side of the lifecycle, shared by the middleware (start) and the interceptor (commit). */
@Injectable()
export class SessionLifecycle {
  private readonly logger = new Logger('Session');
  /** True when `req.session` is a getter over the context (Express, see SessionModule): nothing to store per request. */
  private sessionGetter = false;

  constructor(
    private readonly manager: SessionManager,
    @Inject(SESSION_RESOLVED_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Extract + start: parse the cookie, lock and read, attach the handle to `req.session`.
   * Resolves to false when the client went away meanwhile (the lock is already released).
   */
  async begin(req: IncomingMessage, res: ServerResponse, readOnly: boolean): Promise<boolean> {
    if (contexts.has(req)) return true; // mounted twice: the first one owns it
    const { trustProxy } = this.options;
    const cookie = readSessionCookie(req.headers.cookie, this.options.cookie.name);
    // Listen before waiting for the lock: a client that gives up while we wait must not leave
    // the lock held until its TTL. (`close` fires once: `on`, without once()'s wrapper.)
    let closed = false;
    let ctx: SessionRequestContext | undefined;
    res.on('close', () => {
      closed = true;
      if (ctx?.phase === 'loaded') void this.abandon(ctx);
    });
    let handle: SessionHandle;
    try {
      handle = await this.manager.start(
        { cookieId: cookie.id, hadCookie: cookie.present, ip: clientIp(req, trustProxy), userAgent: userAgent(req) },
        readOnly,
      );
    } catch (err) {
      if (err instanceof SessionLockException) this.retryAfter(res);
      throw err;
    }
    ctx = {
      handle,
      phase: 'loaded',
      secure: isSecureRequest(req, trustProxy),
      xsrfSeen: this.options.csrf.xsrfCookie ? readCookie(req.headers.cookie, XSRF_COOKIE) : null,
      applied: null,
    };
    if (closed) {
      await this.abandon(ctx);
      return false;
    }
    contexts.set(req, ctx);
    if (!this.sessionGetter) (req as { session?: unknown }).session = handle;
    return true;
  }

  /**
   * Commit: age flash, write, unlock, then decide the cookie. Runs before the response is
   * written. `res` is the platform response (Express `res` or Fastify `reply`).
   */
  async commit(ctx: SessionRequestContext, res: unknown): Promise<void> {
    if (ctx.phase === 'done') return;
    ctx.phase = 'done';
    try {
      await this.manager.persist(ctx.handle, true);
    } catch (err) {
      if (err instanceof SessionLockException) this.retryAfter(res); // the lock was lost meanwhile
      throw err;
    }
    this.applyHeaders(ctx, res);
  }

  /** Every 423 says when to come back: after about one lock wait. */
  retryAfter(res: unknown): void {
    setHeader(res, 'retry-after', String(Math.max(1, Math.ceil(this.options.lock.waitMs / 1000))));
  }

  /**
   * Lets a save() in the handler put the session's headers on the response `res` (the platform
   * response), for handlers that send it themselves before the commit (`@Res()`).
   */
  bindResponse(ctx: SessionRequestContext, res: unknown): void {
    ctx.handle.onSaved = () => this.applyHeaders(ctx, res);
  }

  /**
   * Puts the session's cookies (and `noStore`'s header) on the response. After a save() it may
   * run again: cookies set earlier that no longer apply (the ID changed since) are taken back,
   * and none is sent twice.
   */
  private applyHeaders(ctx: SessionRequestContext, res: unknown): void {
    const cookies = this.cookiesFor(ctx);
    const before = ctx.applied;
    if (before === null) {
      if (cookies.length > 0) putSetCookies(res, [], cookies, this.logger);
    } else {
      putSetCookies(
        res,
        before.filter((c) => !cookies.includes(c)),
        cookies.filter((c) => !before.includes(c)),
        this.logger,
      );
    }
    ctx.applied = cookies;
    if (this.options.noStore && ctx.handle.id !== null) setHeader(res, 'cache-control', 'no-store');
  }

  /**
   * Ends a read-only session's request early when its commit would do nothing: it never writes
   * or holds a lock, and its headers (a dead session's cookie removal, a stale XSRF-TOKEN,
   * `noStore`) depend only on what was loaded. True when there are none: the session is then
   * marked committed, and nothing needs to run after the handler.
   */
  finishSilentReadOnly(ctx: SessionRequestContext): boolean {
    if (!ctx.handle.readOnly || ctx.phase === 'done') return false;
    if (this.options.noStore && ctx.handle.id !== null) return false;
    if (this.cookiesFor(ctx).length > 0) return false;
    ctx.phase = 'done';
    ctx.handle.finished = true;
    return true;
  }

  /**
   * Makes the session's mode match the handler's `@SessionReadOnly()` metadata. The middleware
   * chose by path before routing; the handler is the truth (sibling routes like `:id` and `new`,
   * RouterModule prefixes and versions can make the path guess wrong).
   */
  async matchHandler(ctx: SessionRequestContext, req: { raw?: unknown }, res: unknown, readOnly: boolean): Promise<void> {
    if (ctx.handle.readOnly === readOnly) return;
    if (readOnly) {
      await this.manager.downgrade(ctx.handle);
      return;
    }
    try {
      ctx.handle = await this.manager.upgrade(ctx.handle);
    } catch (err) {
      if (err instanceof SessionLockException) this.retryAfter(res);
      throw err;
    }
    // On Express with the getter, `req.session` already reads ctx.handle. On Fastify
    // `request.session` is a getter over the raw request's context: set the raw one only.
    if (this.sessionGetter) return;
    const target = (req.raw ?? req) as { session?: unknown };
    target.session = ctx.handle;
  }

  /** Called once at start-up when `req.session` is served by a getter on the request prototype. */
  useSessionGetter(): void {
    this.sessionGetter = true;
  }

  /** Release without writing (the handler never ran, or its result was abandoned). */
  async abandon(ctx: SessionRequestContext): Promise<void> {
    if (ctx.phase === 'done') return;
    ctx.phase = 'done';
    await this.manager.release(ctx.handle);
  }

  /**
   * Set-Cookie only when needed: a newly stored or regenerated ID, or a dead session to forget;
   * and, with `csrf.xsrfCookie`, a script-readable XSRF-TOKEN when the browser's copy is stale.
   */
  private cookiesFor(ctx: SessionRequestContext): string[] {
    const { handle } = ctx;
    const c = this.options.cookie;
    const secure = c.secure === 'auto' ? ctx.secure : c.secure;
    const attrs = { path: c.path, domain: c.domain, secure, httpOnly: c.httpOnly, sameSite: c.sameSite, partitioned: c.partitioned };
    const out: string[] = [];
    const live = handle.id !== null && handle.stored;
    if (live && handle.id !== handle.facts.cookieId) {
      out.push(serializeCookie(c.name, handle.id!, { ...attrs, expires: c.persistent ? handle.meta!.expiresAt : undefined }));
    } else if (!live && handle.dropCookie) {
      out.push(serializeCookie(c.name, '', { ...attrs, expires: 0 }));
    }
    if (this.options.csrf.xsrfCookie) {
      const token = live ? handle.peekCsrfToken() : null;
      // Scripts must read it (Angular, axios), so never HttpOnly; it is useless without the session cookie.
      if (token !== null && token !== ctx.xsrfSeen) out.push(serializeCookie(XSRF_COOKIE, token, { ...attrs, httpOnly: false }));
      else if (token === null && ctx.xsrfSeen !== null) out.push(serializeCookie(XSRF_COOKIE, '', { ...attrs, httpOnly: false, expires: 0 }));
    }
    return out;
  }
}

function setHeader(res: unknown, name: string, value: string): void {
  const r = res as { raw?: ServerResponse; header?: (k: string, v: string) => unknown; setHeader?: ServerResponse['setHeader']; headersSent?: boolean };
  if (r.raw && typeof r.header === 'function') r.header(name, value);
  else if (typeof r.setHeader === 'function' && !r.headersSent) r.setHeader(name, value);
}

/** Takes the values `remove` back from the response's Set-Cookie header and adds `add`. */
function putSetCookies(res: unknown, remove: string[], add: string[], logger: Logger): void {
  if (remove.length === 0 && add.length === 0) return;
  const r = res as {
    raw?: ServerResponse;
    header?: (k: string, v: string) => unknown;
    getHeader?: ServerResponse['getHeader'];
    removeHeader?: ServerResponse['removeHeader'];
    setHeader?: ServerResponse['setHeader'];
  };
  const raw: ServerResponse | undefined = r.raw ?? (typeof r.setHeader === 'function' ? (res as ServerResponse) : undefined);
  if (raw?.headersSent) {
    // A handler that wrote the response itself (@Res()) before the session was saved: too late for a cookie.
    logger.warn('The response was sent before the session was committed, so its cookie could not be set. Use @Res({ passthrough: true }) or await session.save() before writing the response.');
    return;
  }
  if (r.raw && typeof r.header === 'function') {
    // Fastify's reply keeps its own headers (they win over the raw response's) and appends set-cookie values.
    if (remove.length > 0 && typeof r.getHeader === 'function' && typeof r.removeHeader === 'function') {
      const kept = headerList(r.getHeader('set-cookie')).filter((v) => !remove.includes(v));
      r.removeHeader('set-cookie');
      for (const v of kept) r.header('set-cookie', v);
    }
    for (const v of add) r.header('set-cookie', v);
    return;
  }
  if (raw) {
    const next = [...headerList(raw.getHeader('set-cookie')).filter((v) => !remove.includes(v)), ...add];
    if (next.length > 0) raw.setHeader('set-cookie', next);
    else raw.removeHeader('set-cookie');
  }
}

function headerList(value: unknown): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
}
