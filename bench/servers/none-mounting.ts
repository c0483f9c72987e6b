/** Experiment: (a) plus a pass-through global interceptor (MOUNTING=interceptor) or that and a pass-through middleware (MOUNTING=both). */
import { createMountingOnlyApp } from './apps.js';
import { serve, start } from './common.js';

start(async () => {
  await serve(await createMountingOnlyApp(process.env.MOUNTING === 'both' ? 'both' : 'interceptor'));
});
