/**
 * (g) baseline: @fastify/session + @fastify/cookie on the same Nest Fastify app, with connect-redis
 * (node-redis) as its store. `saveUninitialized: false` and `rolling: false` give it the same
 * save policy as express-session in (b): a session is written only when it changed.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { createFastifySessionApp } from './apps.js';
import { COOKIE_SECRET, env, serve, start } from './common.js';

start(async () => {
  const client = createClient({ url: env('REDIS_URL') });
  client.on('error', (err: unknown) => console.error('node-redis error:', err));
  await client.connect();
  const store = new RedisStore({ client, prefix: env('KEY_PREFIX') });
  const app = await createFastifySessionApp();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: COOKIE_SECRET,
    store,
    saveUninitialized: false,
    rolling: false,
    cookie: { secure: false },
  });
  await serve(app, async () => {
    client.destroy();
  });
});
