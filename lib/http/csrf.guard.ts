import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionManager } from '../core/session-manager.js';
import { safeEqual } from '../core/session-id.util.js';
import type { ResolvedSessionOptions } from '../core/session-options.resolver.js';
import { SESSION_RESOLVED_OPTIONS, SKIP_CSRF } from '../core/session.constants.js';
import { getSessionContext } from './session-lifecycle.service.js';
import { isSecureRequest } from './request-info.util.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const MESSAGE =
  'CSRF check failed: send the token from session.csrfToken() in the X-CSRF-Token header or a _token form field, from a page of this site.';

/**
 * Rejects state-changing requests (every method but GET, HEAD, OPTIONS) that do not prove they
 * come from this site: cross-site `Sec-Fetch-Site` or a foreign `Origin` are refused outright,
 * then the session's CSRF token must match (constant-time) the `X-CSRF-Token` header, the
 * `_token` body field, or the `X-XSRF-TOKEN` header. `@SkipCsrf()` opts a route out.
 */
@Injectable()
export class CsrfGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly manager: SessionManager,
    @Inject(SESSION_RESOLVED_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(SKIP_CSRF, [context.getHandler(), context.getClass()])) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<{ raw?: IncomingMessage; body?: unknown; method?: string; url?: string }>();
    const raw: IncomingMessage = req.raw ?? (req as unknown as IncomingMessage);
    const method = (raw.method ?? 'GET').toUpperCase();
    const res = http.getResponse<{ raw?: ServerResponse }>();
    const rawRes: ServerResponse = res.raw ?? (res as unknown as ServerResponse);
    if (!rawRes.headersSent) appendVary(rawRes, 'Origin, Sec-Fetch-Site');
    if (SAFE_METHODS.has(method)) return true;
    if (this.isExcluded(raw.url ?? '/')) return true;

    const ctx = getSessionContext(req);
    const reject = (reason: string): never => {
      this.manager.emitFor('csrf-failure', ctx?.handle.getId() ?? null, ctx?.handle.getUserId() ?? null, reason);
      throw new ForbiddenException(MESSAGE);
    };

    const site = header(raw, 'sec-fetch-site');
    if (site === 'cross-site') reject('cross-site');
    if (site === 'same-site' && !this.options.csrf.allowSameSite) reject('same-site');
    const origin = header(raw, 'origin');
    // A browser that says same-site (allowed by option) sends its sibling's Origin: Fetch
    // Metadata is set by the browser itself, so it is the better witness there.
    const sameSiteAllowed = site === 'same-site' && this.options.csrf.allowSameSite;
    if (origin !== undefined && !sameSiteAllowed && !this.isOwnOrigin(origin, raw)) reject('origin');

    if (!ctx) reject('no-session');
    const expected = ctx!.handle.peekCsrfToken();
    if (expected === null) reject('no-token');
    const provided = tokenHeader(raw, 'x-csrf-token') ?? bodyToken(req.body) ?? tokenHeader(raw, 'x-xsrf-token');
    if (!safeEqual(provided, expected)) reject('mismatch');
    return true;
  }

  private isOwnOrigin(origin: string, req: IncomingMessage): boolean {
    const host = header(req, this.options.trustProxy && header(req, 'x-forwarded-host') ? 'x-forwarded-host' : 'host');
    if (!host) return false;
    const scheme = isSecureRequest(req, this.options.trustProxy) ? 'https' : 'http';
    return origin.toLowerCase() === `${scheme}://${host.split(',')[0].trim().toLowerCase()}`;
  }

  private isExcluded(url: string): boolean {
    const path = url.split('?')[0];
    return this.options.csrf.except.some((rule) => {
      if (typeof rule === 'string') return rule.endsWith('*') ? path.startsWith(rule.slice(0, -1)) : path === rule;
      // test() on a global or sticky RegExp starts at its lastIndex, left over from the last call:
      // from 0 every time, so the answer never depends on the request before (`y` keeps its meaning).
      // Other patterns never read it (and may be frozen): left alone.
      if (rule.global || rule.sticky) rule.lastIndex = 0;
      return rule.test(path);
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return v;
}

/**
 * A token header sent exactly once. Node joins a repeated header into one `a, b` string, which
 * would be compared as a (wrong) token and hide the other sources: sent twice, it is absent.
 */
function tokenHeader(req: IncomingMessage, name: string): string | undefined {
  const values = req.headersDistinct?.[name];
  if (values === undefined) return header(req, name);
  return values.length === 1 ? values[0] : undefined;
}

/** `_token` from a parsed JSON or urlencoded body; anything but a string counts as absent. */
function bodyToken(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const t = (body as Record<string, unknown>)._token;
  return typeof t === 'string' ? t : undefined;
}

function appendVary(res: ServerResponse, value: string): void {
  const prev = res.getHeader('vary');
  if (prev === undefined) res.setHeader('Vary', value);
  else if (!String(prev).includes('Sec-Fetch-Site')) res.setHeader('Vary', `${String(prev)}, ${value}`);
}
