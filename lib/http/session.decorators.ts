import { SetMetadata, createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { SessionException } from '../contracts/session-exception.js';
import type { SessionInterface } from '../contracts/session.interface.js';
import { SESSION_READ_ONLY, SKIP_CSRF } from '../core/session.constants.js';
import { getSessionContext } from './session-lifecycle.service.js';

/** The session of the current request, from a request object (Express, Fastify, or raw). */
export function getSession(req: unknown): SessionInterface {
  const ctx = getSessionContext(req);
  if (!ctx) {
    throw new SessionException('No session on this request: import SessionModule.forRoot() in your root module (its middleware must run for this route).');
  }
  return ctx.handle;
}

/**
 * Injects the request's `SessionInterface`. Note: `@nestjs/common` also exports a `Session`
 * decorator (express-session's); import this one from this package. The handle is also on `req.session`.
 */
export const Session = createParamDecorator((_data: unknown, context: ExecutionContext): SessionInterface => getSession(context.switchToHttp().getRequest()));

/** The route reads the session without locking it and never writes it: such requests run in parallel. */
export const SessionReadOnly = (): MethodDecorator & ClassDecorator => SetMetadata(SESSION_READ_ONLY, true);

/** Opts a route (or every route of a controller) out of `CsrfGuard`. */
export const SkipCsrf = (): MethodDecorator & ClassDecorator => SetMetadata(SKIP_CSRF, true);
