// The sample app's session config: defaults in code, overrides from the environment (`publish-config` writes a fuller one, with every default spelled out).
import { registerAs } from '@nestjs/config';
import { sessionOptionsFromEnv, type SessionModuleOptions } from '../../lib/index.js';

export default registerAs('session', (): SessionModuleOptions => {
  const env = sessionOptionsFromEnv(process.env);
  return {
    driver: 'file',
    file: { path: './storage/sessions' },
    idleTimeout: 1800,
    absoluteTimeout: 43200,
    ...env,
  };
});
