/** (e) this module with the File driver (one directory per contender). */
import { createOurApp } from './apps.js';
import { env, serve, start } from './common.js';

start(async () => {
  const app = await createOurApp({ driver: 'file', file: { path: env('SESSION_DIR') } }, 'express');
  await serve(app);
});
