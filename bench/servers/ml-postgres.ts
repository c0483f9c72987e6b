/** (f) this module with the Database driver on PostgreSQL (its own table, created by the runner). */
import { createOurApp } from './apps.js';
import { env, serve, start } from './common.js';

start(async () => {
  const app = await createOurApp({ driver: 'database', database: { url: env('DATABASE_URL'), table: env('SESSION_TABLE') } }, 'express');
  await serve(app);
});
