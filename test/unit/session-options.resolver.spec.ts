import { describe, it, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SessionOptionsError, resolveSessionOptions } from '../../lib/core/session-options.resolver.js';
import type { SessionModuleOptions } from '../../lib/contracts/session-options.interface.js';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';

describe('resolveSessionOptions: timeouts in whole milliseconds', () => {
  // Stored times must be whole ms (BIGINT columns; the encryption binds them as such).
  it('are rounded, and a positive timeout never rounds to 0', () => {
    expect(resolveSessionOptions({ absoluteTimeout: 3600 / 7 }).absoluteTimeoutMs).toBe(514_286);
    const tiny = resolveSessionOptions({ idleTimeout: 0.0001, absoluteTimeout: 0.0004 });
    expect([tiny.idleTimeoutMs, tiny.absoluteTimeoutMs]).toEqual([1, 1]);
  });
});

describe('resolveSessionOptions: refused before any provider runs', () => {
  it.each<[string, SessionModuleOptions, RegExp]>([
    // Node would run these timers after 1 ms instead (more than 2^31 - 1 ms).
    ['gc.interval of 35 days', { gc: { interval: 3e6 } }, /gc\.interval.*24\.8 days/],
    ['lock.waitTimeout of 35 days', { lock: { waitTimeout: 3e6 } }, /lock\.waitTimeout/],
    ['lock.ttl of 35 days', { lock: { ttl: 3e6 } }, /lock\.ttl/],
    // Times past BIGINT (database columns) would make every write fail instead of start-up.
    ['absoluteTimeout of 1e16 s', { absoluteTimeout: 1e16 }, /absoluteTimeout.*100 years/],
    ['idleTimeout of 101 years', { idleTimeout: 101 * 365 * 24 * 3600 }, /idleTimeout/],
    // Checked here, not when the serializer is built: by then the driver may have opened.
    ['an encryption key of 16 bytes', { encryption: { keys: [randomBytes(16).toString('base64')] } }, /encryption\.keys\[0\]/],
    ['a second key that is not a key', { encryption: { keys: [randomBytes(32).toString('base64'), 'nope'] } }, /encryption\.keys\[1\]/],
    ['a cookie name that is not a string', { cookie: { name: 123 as never } }, /cookie\.name/],
    ['a serializer of null', { serializer: null as never }, /serializer/],
  ])('%s', (_label, options, message) => {
    expect(() => resolveSessionOptions(options)).toThrow(SessionOptionsError);
    expect(() => resolveSessionOptions(options)).toThrow(message);
  });

  it('a serializer may be a class with static methods', () => {
    class StaticSerializer {
      static serialize = (p: unknown): string => JSON.stringify(p);
      static deserialize = (t: string): unknown => JSON.parse(t);
    }
    expect(resolveSessionOptions({ serializer: StaticSerializer as never }).serializer).toBe(StaticSerializer);
  });

  it('the longest timer delay Node honours is accepted', () => {
    expect(resolveSessionOptions({ gc: { interval: 2147483 } }).gcIntervalMs).toBe(2_147_483_000);
  });
});

describe('RedisDriver options', () => {
  it('refuses redis.url next to redis.cluster, whose credentials it would drop', () => {
    expect(() => new RedisDriver({ url: 'redis://:secret@127.0.0.1:7000', cluster: [{ host: '127.0.0.1', port: 7000 }] })).toThrow(/redis\.url is not used with redis\.cluster/);
  });
});
