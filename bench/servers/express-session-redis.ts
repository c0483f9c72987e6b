/**
 * (b) What users pick today: express-session + connect-redis on the node-redis client,
 * `resave: false`, `saveUninitialized: false`, every other option at its default.
 */
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import { createClient } from 'redis';
import { createExpressSessionApp } from './apps.js';
import { COOKIE_SECRET, env, serve, start } from './common.js';

start(async () => {
  const client = createClient({ url: env('REDIS_URL') });
  client.on('error', (err: unknown) => console.error('node-redis error:', err));
  await client.connect();
  const store = new RedisStore({ client, prefix: env('KEY_PREFIX') });
  const app = await createExpressSessionApp(session({ store, secret: COOKIE_SECRET, resave: false, saveUninitialized: false }));
  await serve(app, async () => {
    client.destroy();
  });
});
