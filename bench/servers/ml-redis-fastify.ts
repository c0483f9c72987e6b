/** (g) this module on @nestjs/platform-fastify with the Redis driver, locking on. */
import { createOurApp } from './apps.js';
import { env, mlRedisOptions, serve, start } from './common.js';

start(async () => {
  const app = await createOurApp({ driver: 'redis', redis: { url: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX'), ...mlRedisOptions() } }, 'fastify');
  await serve(app);
});
