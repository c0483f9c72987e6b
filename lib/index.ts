// Public API. Anything not exported here is internal and may change without notice.
export { SessionModule } from './session.module.js';
export { SessionManager, type UserSessionSummary } from './core/session-manager.js';
export { SessionBag } from './core/session-bag.js';
export { SessionOptionsError, type ResolvedSessionOptions } from './core/session-options.resolver.js';
export { SESSION_RESOLVED_OPTIONS } from './core/session.constants.js';
export { DriverFactory } from './drivers/driver.factory.js';
export { MemoryDriver } from './drivers/memory.driver.js';
export { FileDriver } from './drivers/file.driver.js';
export { DatabaseDriver } from './drivers/database.driver.js';
export { RedisDriver } from './drivers/redis.driver.js';
export { JsonSerializer } from './serializers/json.serializer.js';
export { EncryptedSerializer } from './serializers/encrypted.serializer.js';
export { CsrfGuard } from './http/csrf.guard.js';
export { SessionMiddleware, SessionReadOnlyMiddleware } from './http/session.middleware.js';
export { SessionInterceptor } from './http/session.interceptor.js';
export { Session, SessionReadOnly, SkipCsrf, getSession } from './http/session.decorators.js';
export * from './contracts/index.js';
export { sessionOptionsFromEnv } from './session-env.config.js';
