import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
 *   a route outside Nest), the end of the request releases the lock without committing (only a
 *   save() already in flight lands): the response's `close`, or for a pipelined request its
 *   connection's `close` or its `end()`;
 * - `handling`: the interceptor owns it and commits before the response is written;
 * - `done`: committed, released, or read-only with nothing to commit.
 */
export interface SessionRequestContext {
  handle: SessionHandle;
  phase: 'loaded' | 'handling' | 'done';
  secure: boolean;
  /** The `XSRF-TOKEN` cookie the browser sent (only read when `csrf.xsrfCookie` is on). */
  xsrfSeen: string | null;
  /**
   * Where the session's headers go: the raw response from the middleware on (locking requests:
   * a save() may come), the platform's response (Fastify's reply) once the interceptor runs;
   * null once done, so that the context never keeps the request alive.
   */
  res: unknown;
  /** The Set-Cookie values the session last put on `appliedTo` (by a save() or the commit); null before any. */
  applied: string[] | null;
  appliedTo: unknown;
  /** The response went out before a cookie could be set, and the warning was logged: nothing more to do. */
  tooLate: boolean;
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
   * Resolves to false when the client is gone (before, or while waiting for the lock): no handler
   * runs, and no lock is left held.
   */
  async begin(req: IncomingMessage, res: ServerResponse, readOnly: boolean): Promise<boolean> {
    if (contexts.has(req)) return true; // mounted twice: the first one owns it
    // The client left while an earlier middleware ran: its `close` has fired already, and no
    // listener attached now would ever release a lock taken for it. (A pipelined response still
    // queued behind an earlier one is never destroyed: its connection is. On HTTP/2 the
    // request's socket stands for its stream.)
    if (res.destroyed || req.socket?.destroyed) return false;
    const { trustProxy } = this.options;
    const cookie = readSessionCookie(req.headers.cookie, this.options.cookie.name);
    // Listen before waiting for the lock: a client that gives up while we wait must not leave
    // the lock held until its TTL. `onClose` may run more than once (response, connection,
    // end()): only the first abandon() acts.
    let closed = false;
    let ctx: SessionRequestContext | undefined;
    const onClose = (): void => {
      closed = true;
      if (ctx?.phase === 'loaded') void this.abandon(ctx);
    };
    res.on('close', onClose);
    // A pipelined response waiting behind an earlier one has no socket yet: Node never emits its
    // `close` when the client leaves (hear it from the connection), and emits it only once the
    // response ahead is done (a long poll, an event stream). A request that ends without a
    // commit (guard refusal, 404) lets its lock go when it ends, not then.
    if (res.socket === null && req.socket) {
      res.once('close', whenConnectionCloses(req.socket, onClose));
      const end = res.end;
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        onClose();
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as ServerResponse['end'];
    }
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
      res: readOnly ? null : res,
      applied: null,
      appliedTo: null,
      tooLate: false,
    };
    if (!readOnly) this.bindSave(ctx);
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
      try {
        await this.manager.persist(ctx.handle, true);
      } catch (err) {
        if (err instanceof SessionLockException) this.retryAfter(res); // the lock was lost meanwhile
        throw err;
      }
      this.applyHeaders(ctx, res);
    } finally {
      detach(ctx);
    }
  }

  /** Every 423 says when to come back: after about one lock wait. */
  retryAfter(res: unknown): void {
    setHeader(res, 'retry-after', String(Math.max(1, Math.ceil(this.options.lock.waitMs / 1000))));
  }

  /** From the interceptor on, headers go to the platform's response (Fastify: the reply, whose headers win). */
  useResponse(ctx: SessionRequestContext, res: unknown): void {
    ctx.res = res;
    // A save() in a guard wrote to the raw response, whose Set-Cookie Fastify replaces with the
    // reply's: put them on the reply now, before a handler may send it.
    if (ctx.applied !== null && ctx.appliedTo !== res) this.applyHeaders(ctx, res);
  }

  /**
   * Lets every save() put the session's headers on the response at once: a handler that sends
   * the response itself (`@Res()`) does so before the commit, and a guard may save before the
   * interceptor runs.
   */
  private bindSave(ctx: SessionRequestContext): void {
    ctx.handle.onSaved = () => this.applyHeaders(ctx, ctx.res);
  }

  /**
   * Puts the session's cookies (and `noStore`'s header) on the response. After a save() it runs
   * again: a cookie set earlier that no longer applies (the ID changed since) is taken back, one
   * that the application overwrote is put back, and none is sent twice. Without a cookie now or
   * before (most requests), it touches no header.
   */
  private applyHeaders(ctx: SessionRequestContext, res: unknown): void {
    if (ctx.tooLate) return;
    const cookies = this.cookiesFor(ctx);
    const before = ctx.applied;
    if (cookies.length > 0 || (before !== null && before.length > 0)) {
      if (!putSetCookies(res, before ?? [], cookies)) {
        ctx.tooLate = true;
        this.logger.warn('The response was sent before the session was committed, so its cookie could not be set. Use @Res({ passthrough: true }) or await session.save() before writing the response.');
        return;
      }
    }
    ctx.applied = cookies;
    ctx.appliedTo = res;
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
    detach(ctx);
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
    ctx.res = res;
    this.bindSave(ctx);
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

  /** Release without committing (the handler never ran, or its result was dropped); a save() in flight lands first. */
  async abandon(ctx: SessionRequestContext, why: 'no-handler' | 'dropped' = 'no-handler'): Promise<void> {
    if (ctx.phase === 'done') return;
    ctx.phase = 'done';
    try {
      // A save() a guard started lands first: its onSaved still reaches the response (and says
      // when the cookie came too late).
      await this.manager.release(ctx.handle, why);
    } finally {
      detach(ctx);
    }
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

const CONNECTION_WAITERS = Symbol('ml-session:connection-waiters');

/**
 * Runs `fn` when the connection closes; returns the function that stops that. One listener per
 * connection, however many pipelined requests wait on it (one each hit Node's MaxListeners
 * warning). Kept on the socket itself: a WeakMap keyed by it would hold values reaching it.
 */
function whenConnectionCloses(socket: Socket, fn: () => void): () => void {
  const s = socket as Socket & { [CONNECTION_WAITERS]?: Set<() => void> };
  const waiters = s[CONNECTION_WAITERS] ?? (s[CONNECTION_WAITERS] = listenForClose(socket));
  waiters.add(fn);
  return () => {
    waiters.delete(fn);
  };
}

function listenForClose(socket: Socket): Set<() => void> {
  const waiters = new Set<() => void>();
  socket.once('close', () => {
    for (const f of waiters) f();
    waiters.clear();
  });
  return waiters;
}

/**
 * A finished request's context lets go of its response. The context is the value of a WeakMap
 * keyed by the request, and a value that reaches its own key (response → request) keeps the
 * whole request alive through young-generation collections: measured on Fastify, twice the GC
 * time per request (docs/benchmarks.md).
 */
function detach(ctx: SessionRequestContext): void {
  ctx.res = null;
  ctx.appliedTo = null;
  ctx.handle.onSaved = null;
}

/**
 * Makes the response's Set-Cookie hold `want` and none of the rest of `remove`, keeping every
 * other value (the application's own cookies) in place. Writes only when that changes something;
 * false when it would have but the response was already sent.
 */
function putSetCookies(res: unknown, remove: string[], want: string[]): boolean {
  const r = res as {
    raw?: ServerResponse;
    header?: (k: string, v: string) => unknown;
    getHeader?: ServerResponse['getHeader'];
    removeHeader?: ServerResponse['removeHeader'];
    setHeader?: ServerResponse['setHeader'];
  };
  const fastify = r.raw !== undefined && typeof r.header === 'function' && typeof r.getHeader === 'function' && typeof r.removeHeader === 'function';
  const raw: ServerResponse | undefined = r.raw ?? (typeof r.setHeader === 'function' ? (res as ServerResponse) : undefined);
  if (!raw) return true;
  const rawValue = raw.getHeader('set-cookie');
  const rawList = headerList(rawValue);
  // Sent: the raw response holds what went out (Fastify's writeHead copied the reply's list there).
  if (raw.headersSent) return sameList(rawList, mergeCookies(rawList, remove, want));
  // Before that, Fastify's getHeader gives the reply's own list, or the raw one when it has none.
  const replyValue = fastify ? r.getHeader!('set-cookie') : undefined;
  const replyOwn = fastify && replyValue !== rawValue ? headerList(replyValue) : [];
  const current = [...rawList];
  for (const v of replyOwn) if (!current.includes(v)) current.push(v);
  const next = mergeCookies(current, remove, want);
  // Fastify writes the reply's Set-Cookie over the raw response's, and a handler may also write
  // through `reply.raw`: both hold the same list.
  if (sameList(rawList, next) && (!fastify || sameList(replyOwn, next))) return true;
  if (fastify) {
    r.removeHeader!('set-cookie'); // the raw response's too
    for (const v of next) r.header!('set-cookie', v);
  }
  if (next.length > 0) raw.setHeader('set-cookie', next);
  else raw.removeHeader('set-cookie');
  return true;
}

/** `current` without the values of `remove` that are not wanted, plus the wanted ones it lacks; order kept. */
function mergeCookies(current: string[], remove: string[], want: string[]): string[] {
  const next = current.filter((v) => !remove.includes(v) || want.includes(v));
  for (const v of want) if (!next.includes(v)) next.push(v);
  return next;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function headerList(value: unknown): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
}
