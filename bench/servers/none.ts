/** (a) The ceiling: the same Nest app and routes with no session middleware. */
import { createNoSessionApp } from './apps.js';
import { serve, start } from './common.js';

start(async () => {
  await serve(await createNoSessionApp());
});
