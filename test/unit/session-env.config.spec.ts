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
    [{ SESSION_LIFETIME: '1e16' }, /SESSION_LIFETIME/],
    [{ SESSION_REDIS_CLUSTER_NODES: 'nohost' }, /SESSION_REDIS_CLUSTER_NODES/],
    [{ SESSION_ENCRYPT: 'yes' }, /SESSION_KEYS/],
    // `${KEY},${OLD_KEY}` with both unset must not turn encryption off.
    [{ SESSION_ENCRYPT: 'true', SESSION_KEYS: ' , ' }, /SESSION_KEYS/],
    // Keys without SESSION_ENCRYPT would be ignored: sessions stored in clear.
    [{ SESSION_KEYS: 'a2V5' }, /SESSION_ENCRYPT/],
    [{ SESSION_REDIS_CLUSTER_NODES: 'a:0' }, /SESSION_REDIS_CLUSTER_NODES/],
    [{ SESSION_REDIS_CLUSTER_NODES: 'a:99999' }, /SESSION_REDIS_CLUSTER_NODES/],
    [{ SESSION_REDIS_URL: 'redis://:pw@h:6379', SESSION_REDIS_CLUSTER_NODES: 'h:7000' }, /SESSION_REDIS_URL/],
  ])('an invalid value names its variable: %j', (env, message) => {
    expect(() => sessionOptionsFromEnv(env)).toThrow(message);
  });

  it('SESSION_ENCRYPT=false with keys set keeps encryption off on purpose', () => {
    expect(sessionOptionsFromEnv({ SESSION_ENCRYPT: 'false', SESSION_KEYS: 'a2V5' })).toEqual({});
  });

  it('reads driver and IP policy names in any case, and cluster nodes with IPv6 or a trailing comma', () => {
    expect(
      sessionOptionsFromEnv({ SESSION_DRIVER: 'Redis', SESSION_IP_POLICY: 'Strict', SESSION_REDIS_CLUSTER_NODES: '[::1]:7000, 10.0.0.2:7001,' }),
    ).toEqual({
      driver: 'redis',
      fingerprint: { ip: 'strict' },
      redis: { cluster: [{ host: '::1', port: 7000 }, { host: '10.0.0.2', port: 7001 }] },
    });
  });
});
