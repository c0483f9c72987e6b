/** (f) baseline: express-session + connect-pg-simple (its own pool of the default size, its own table). */
import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import { createExpressSessionApp } from './apps.js';
import { COOKIE_SECRET, env, serve, start } from './common.js';

start(async () => {
  const PgStore = connectPgSimple(session);
  const store = new PgStore({ conString: env('DATABASE_URL'), tableName: env('SESSION_TABLE'), createTableIfMissing: true });
  const app = await createExpressSessionApp(session({ store, secret: COOKIE_SECRET, resave: false, saveUninitialized: false }));
  await serve(app, async () => {
    store.close();
  });
});
