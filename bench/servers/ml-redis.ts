/**
 * (c) and (d): this module on Express with the Redis driver, locking on (the default).
 * (c) loads `/rw`, (d) loads the `@SessionReadOnly()` route `/ro`; each runs as its own process.
 */
import { createOurApp } from './apps.js';
import { env, mlRedisOptions, serve, start } from './common.js';

start(async () => {
  const app = await createOurApp({ driver: 'redis', redis: { url: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX'), ...mlRedisOptions() } }, 'express');
  await serve(app);
});
