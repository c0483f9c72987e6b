/** What `publish-config` writes: the app's session config, with env-var overrides. */
export const SESSION_CONFIG_TEMPLATE = `// Session configuration for SessionModule.forRootAsync(). Published by \`monkeyslegion-session publish-config\`.
// Every value can be overridden by the environment variables documented in docs/usage.md.
import { registerAs } from '@nestjs/config';
import { sessionOptionsFromEnv, type SessionModuleOptions } from '@monkeyslegion/nestjs-session';

export default registerAs('session', (): SessionModuleOptions => ({
  driver: 'file', // SESSION_DRIVER: file | database | redis | memory
  file: { path: './storage/sessions' }, // SESSION_FILE_PATH
  database: { table: 'sessions' }, // DATABASE_URL, SESSION_TABLE
  redis: { keyPrefix: 'ml_sess:' }, // SESSION_REDIS_URL, SESSION_REDIS_CLUSTER_NODES
  cookie: { name: 'ML_SESS', secure: 'auto', httpOnly: true, sameSite: 'lax', path: '/' },
  idleTimeout: 1800, // SESSION_IDLE_TIMEOUT (seconds)
  absoluteTimeout: 43200, // SESSION_LIFETIME (seconds)
  fingerprint: { userAgent: true, ip: 'relaxed' }, // SESSION_IP_POLICY
  trustProxy: false, // or the number of proxies in front of the app, e.g. 1 behind one nginx
  lock: { enabled: true, waitTimeout: 10, ttl: 30 },
  csrf: { global: false, xsrfCookie: false, allowSameSite: false },
  gc: { interval: 600 },
  maxPayloadBytes: 65536,
  // SESSION_ENCRYPT=true + SESSION_KEYS=<base64 key>[,<older key>…] turn on AES-256-GCM.
  ...merge(sessionOptionsFromEnv()),
}));

// Environment values override the defaults above, nested objects included.
function merge(env: SessionModuleOptions): SessionModuleOptions {
  const out: Record<string, unknown> = { ...env };
  for (const key of ['file', 'database', 'redis', 'cookie', 'fingerprint'] as const) {
    if (env[key]) out[key] = { ...defaults[key], ...env[key] };
  }
  return out as SessionModuleOptions;
}

const defaults: Pick<SessionModuleOptions, 'file' | 'database' | 'redis' | 'cookie' | 'fingerprint'> = {
  file: { path: './storage/sessions' },
  database: { table: 'sessions' },
  redis: { keyPrefix: 'ml_sess:' },
  cookie: { name: 'ML_SESS', secure: 'auto', httpOnly: true, sameSite: 'lax', path: '/' },
  fingerprint: { userAgent: true, ip: 'relaxed' },
};
`;
