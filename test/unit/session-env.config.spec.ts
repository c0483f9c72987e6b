import { describe, it, expect } from '@jest/globals';
import { sessionOptionsFromEnv } from '../../lib/session-env.config.js';

describe('sessionOptionsFromEnv', () => {
  it('maps the documented variables', () => {
    expect(
      sessionOptionsFromEnv({
        SESSION_DRIVER: 'redis',
        SESSION_REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001',
        SESSION_LIFETIME: '3600',
        SESSION_IDLE_TIMEOUT: '60',
        SESSION_COOKIE_NAME: 'sid',
        SESSION_COOKIE_SECURE: 'no',
        SESSION_COOKIE_SAMESITE: 'Strict',
        SESSION_IP_POLICY: 'strict',
      }),
    ).toEqual({
      driver: 'redis',
      redis: { cluster: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }] },
      absoluteTimeout: 3600,
      idleTimeout: 60,
      cookie: { name: 'sid', secure: false, sameSite: 'strict' },
      fingerprint: { ip: 'strict' },
    });
    expect(sessionOptionsFromEnv({})).toEqual({});
  });

  it('reads "false" as false, unlike the PHP original', () => {
    expect(sessionOptionsFromEnv({ SESSION_COOKIE_SECURE: 'false' }).cookie?.secure).toBe(false);
    expect(sessionOptionsFromEnv({ SESSION_COOKIE_SECURE: '1' }).cookie?.secure).toBe(true);
  });

  it.each([
    [{ SESSION_DRIVER: 'mongo' }, /SESSION_DRIVER/],
    [{ SESSION_COOKIE_SECURE: 'maybe' }, /SESSION_COOKIE_SECURE/],
    [{ SESSION_IDLE_TIMEOUT: 'ten' }, /SESSION_IDLE_TIMEOUT/],
    [{ SESSION_REDIS_CLUSTER_NODES: 'nohost' }, /SESSION_REDIS_CLUSTER_NODES/],
    [{ SESSION_ENCRYPT: 'yes' }, /SESSION_KEYS/],
  ])('an invalid value names its variable: %j', (env, message) => {
    expect(() => sessionOptionsFromEnv(env)).toThrow(message);
  });
});
