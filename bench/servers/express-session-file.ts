/** (e) baseline: express-session + session-file-store at its defaults (its logging silenced). */
import session from 'express-session';
import sessionFileStore from 'session-file-store';
import { createExpressSessionApp } from './apps.js';
import { COOKIE_SECRET, env, serve, start } from './common.js';

start(async () => {
  const FileStore = sessionFileStore(session);
  const store = new FileStore({ path: env('SESSION_DIR'), logFn: () => {} });
  const app = await createExpressSessionApp(session({ store, secret: COOKIE_SECRET, resave: false, saveUninitialized: false }));
  await serve(app);
});
