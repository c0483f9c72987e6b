import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionLockException } from '../contracts/session-exception.js';
import { SessionManager } from '../core/session-manager.js';
import type { SessionHandle } from '../core/session-handle.js';
import type { ResolvedSessionOptions } from '../core/session-options.resolver.js';
import { SESSION_RESOLVED_OPTIONS } from '../core/session.constants.js';
import { readCookie, readSessionCookie, serializeCookie } from './cookie.util.js';
import { clientIp, isSecureRequest, userAgent } from './request-info.util.js';

const CONTEXT = Symbol.for('ml-session:context');
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
}

/** The session on a request (Express `req`, Fastify `request` or its raw `IncomingMessage`), if the middleware ran. */
export function getSessionContext(req: unknown): SessionRequestContext | undefined {
  if (typeof req !== 'object' || req === null) return undefined;
  const r = req as { [CONTEXT]?: SessionRequestContext; raw?: { [CONTEXT]?: SessionRequestContext } };
  return r[CONTEXT] ?? r.raw?.[CONTEXT];
}

const WATCH = Symbol('ml-session:close-watch');

/** What the response's `close` listener needs: set before the lock wait, `ctx` once loaded. */
interface CloseWatch {
  closed: boolean;
  ctx: SessionRequestContext | undefined;
  lifecycle: SessionLifecycle;
}

/** The safety net: a response that closes while its session is still `loaded` releases the lock unwritten. */
function onResponseClose(this: ServerResponse): void {
  const watch = (this as { [WATCH]?: CloseWatch })[WATCH];
  if (!watch) return;
  watch.closed = true;
  if (watch.ctx?.phase === 'loaded') void watch.lifecycle.abandon(watch.ctx);
}

/** The HTTP side of the lifecycle, shared by the middleware (start) and the interceptor (commit). */
@Injectable()
export class SessionLifecycle {
  private readonly logger = new Logger('Session');

  constructor(
    private readonly manager: SessionManager,
    @Inject(SESSION_RESOLVED_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Extract + start: parse the cookie, lock and read, attach the handle to `req.session`.
   * Resolves to false when the client went away meanwhile (the lock is already released).
   */
  async begin(req: IncomingMessage, res: ServerResponse, readOnly: boolean): Promise<boolean> {
    if ((req as { [CONTEXT]?: unknown })[CONTEXT]) return true; // mounted twice: the first one owns it
    const { trustProxy } = this.options;
    const cookie = readSessionCookie(req.headers.cookie, this.options.cookie.name);
    // Listen before waiting for the lock: a client that gives up while we wait must not leave
    // the lock held until its TTL. One shared listener and a small record on `res`, not a
    // closure + once() wrapper per request.
    const watch: CloseWatch = { closed: false, ctx: undefined, lifecycle: this };
    (res as { [WATCH]?: CloseWatch })[WATCH] = watch;
    res.on('close', onResponseClose);
    let handle: SessionHandle;
    try {
      handle = await this.manager.start(
        { cookieId: cookie.id, hadCookie: cookie.present, ip: clientIp(req, trustProxy), userAgent: userAgent(req) },
        readOnly,
      );
    } catch (err) {
      if (err instanceof SessionLockException && !res.headersSent) {
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil(this.options.lock.waitMs / 1000))));
      }
      throw err;
    }
    const ctx: SessionRequestContext = {
      handle,
      phase: 'loaded',
      secure: isSecureRequest(req, trustProxy),
      xsrfSeen: this.options.csrf.xsrfCookie ? readCookie(req.headers.cookie, XSRF_COOKIE) : null,
    };
    watch.ctx = ctx;
    if (watch.closed) {
      await this.abandon(ctx);
      return false;
    }
    (req as { [CONTEXT]?: SessionRequestContext })[CONTEXT] = ctx;
    (req as { session?: unknown }).session = handle;
    return true;
  }

  /**
   * Commit: age flash, write, unlock, then decide the cookie. Runs before the response is
   * written. `res` is the platform response (Express `res` or Fastify `reply`).
   */
  async commit(ctx: SessionRequestContext, res: unknown): Promise<void> {
    if (ctx.phase === 'done') return;
    ctx.phase = 'done';
    await this.manager.persist(ctx.handle, true);
    for (const cookie of this.cookiesFor(ctx)) appendSetCookie(res, cookie, this.logger);
    if (this.options.noStore && ctx.handle.id !== null) setHeader(res, 'cache-control', 'no-store');
  }

  /**
   * Makes the session's mode match the handler's `@SessionReadOnly()` metadata. The middleware
   * chose by path before routing; the handler is the truth (sibling routes like `:id` and `new`,
   * RouterModule prefixes and versions can make the path guess wrong).
   */
  async matchHandler(ctx: SessionRequestContext, req: { raw?: unknown }, readOnly: boolean): Promise<void> {
    if (ctx.handle.readOnly === readOnly) return;
    if (readOnly) {
      await this.manager.downgrade(ctx.handle);
      return;
    }
    ctx.handle = await this.manager.upgrade(ctx.handle);
    // On Fastify `request.session` is a getter over the raw request's context: set the raw one only.
    const target = (req.raw ?? req) as { session?: unknown };
    target.session = ctx.handle;
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

function appendSetCookie(res: unknown, cookie: string, logger: Logger): void {
  const r = res as {
    raw?: ServerResponse;
    header?: (k: string, v: string) => unknown;
    headersSent?: boolean;
    getHeader?: ServerResponse['getHeader'];
    setHeader?: ServerResponse['setHeader'];
  };
  const raw: ServerResponse | undefined = r.raw ?? (typeof r.setHeader === 'function' ? (res as ServerResponse) : undefined);
  if (raw?.headersSent) {
    // A handler that wrote the response itself (@Res()) before the commit: too late for a cookie.
    logger.warn('The response was sent before the session was committed, so its cookie could not be set. Use @Res({ passthrough: true }) or await session.save() before writing the response.');
    return;
  }
  if (r.raw && typeof r.header === 'function') {
    r.header('set-cookie', cookie); // Fastify appends set-cookie values
    return;
  }
  if (raw) {
    const prev = raw.getHeader('set-cookie');
    raw.setHeader('set-cookie', prev === undefined ? [cookie] : [...(Array.isArray(prev) ? prev : [String(prev)]), cookie]);
  }
}
