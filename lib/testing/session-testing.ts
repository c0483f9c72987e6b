import type { INestApplication } from '@nestjs/common';
import { SessionManager } from '../core/session-manager.js';
import { SESSION_RESOLVED_OPTIONS } from '../core/session.constants.js';
import type { ResolvedSessionOptions } from '../core/session-options.resolver.js';

export interface TestSessionInit {
  /** Session data (dot-notation keys allowed). */
  data?: Record<string, unknown>;
  /** Flash data readable by the next request, as if the previous request had flashed it. */
  flash?: Record<string, unknown>;
  userId?: string | number | null;
  /** The User-Agent your test requests send (the fingerprint must match). Default: `'nest-test'`. */
  userAgent?: string;
  /** Only matters with `fingerprint.ip: 'strict'`. Default: `'127.0.0.1'`. */
  ipAddress?: string;
}

export interface TestSession {
  id: string;
  csrfToken: string;
  /** `name=id`, for a `Cookie` header. */
  cookie: string;
  /** Headers to send with every request of the test: Cookie, User-Agent and X-CSRF-Token. */
  headers: Record<string, string>;
}

/**
 * Starts a request that already holds a session: stores one through the app's own driver and
 * returns the headers to send. Works the same on Express and Fastify.
 *
 * ```ts
 * const s = await createTestSession(app, { data: { cart: ['apple'] }, userId: 42 });
 * await request(app.getHttpServer()).post('/checkout').set(s.headers).expect(201);
 * ```
 */
export async function createTestSession(app: INestApplication, init: TestSessionInit = {}): Promise<TestSession> {
  const manager = app.get(SessionManager);
  const options = app.get<ResolvedSessionOptions>(SESSION_RESOLVED_OPTIONS);
  const userAgent = init.userAgent ?? 'nest-test';
  const { id, csrfToken } = await manager.create({ ...init, userAgent, ipAddress: init.ipAddress ?? '127.0.0.1' });
  const cookie = `${options.cookie.name}=${id}`;
  return { id, csrfToken, cookie, headers: { Cookie: cookie, 'User-Agent': userAgent, 'X-CSRF-Token': csrfToken } };
}
