/**
 * RedisDriver against the standalone Redis on 127.0.0.1:6379: the conformance suite, then what is
 * specific to Redis (key layout, TTLs, the user index, client ownership). Every key lives under a
 * random prefix per run, removed afterwards.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';
import { SessionException, SessionLockException } from '../../lib/contracts/session-exception.js';
import { describeDriverConformance } from './driver-conformance.js';
import { DriverFactory } from '../../lib/drivers/driver.factory.js';
import { makeRecord, newId, sleep } from '../support/records.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-cluster.js';

const URL = 'redis://127.0.0.1:6379';

/** Removes every key under `pattern` (a test may SCAN; the driver never does). */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

const conformancePrefix = `mlt:${randomBytes(6).toString('hex')}:`;
describeDriverConformance('redis (standalone)', async () => ({
  driver: new RedisDriver({ url: URL, keyPrefix: conformancePrefix }),
  cleanup: async () => {
    const admin = new Redis(URL);
    await deleteKeys(admin, `${conformancePrefix}*`);
    await admin.quit();
  },
}));

describe('RedisDriver (standalone specifics)', () => {
  const prefix = `mlt:${randomBytes(6).toString('hex')}:`;
  let admin: Redis;
  let driver: RedisDriver;

  beforeAll(async () => {
    admin = new Redis(URL);
    driver = new RedisDriver({ url: URL, keyPrefix: prefix });
    await driver.open();
  });
  afterAll(async () => {
    await driver.close();
    await deleteKeys(admin, `${prefix}*`);
    await admin.quit();
  });

  it('refuses a configuration without any way to reach Redis, with a message that says what to set', () => {
    expect(() => new RedisDriver({})).toThrow(SessionException);
    expect(() => new RedisDriver({})).toThrow(/redis\.url/);
  });

  it('keeps the record and its lock under one hash tag, with a TTL of evictAt - now', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
    await driver.write(id, makeRecord({ ttlMs: 30_000 }), token);
    const recordTtl = await admin.pttl(`${prefix}{${id}}`);
    expect(recordTtl).toBeGreaterThan(25_000);
    expect(recordTtl).toBeLessThanOrEqual(30_000);
    const lockTtl = await admin.pttl(`${prefix}{${id}}:lock`);
    expect(lockTtl).toBeGreaterThan(5_000);
    expect(lockTtl).toBeLessThanOrEqual(10_000);
    expect(await admin.get(`${prefix}{${id}}:lock`)).toBe(token);
    await driver.unlock(id, token);
    expect(await admin.exists(`${prefix}{${id}}:lock`)).toBe(0);
  });

  it('a record already past evictAt is stored with the minimum TTL and reads as absent', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ ttlMs: -5000 }));
    expect(await driver.read(id)).toBeNull();
  });

  it('the user index expires with the longest-lived session of that user', async () => {
    const user = 'u-' + randomBytes(4).toString('hex');
    await driver.write(newId(), makeRecord({ userId: user, ttlMs: 5_000 }));
    await driver.write(newId(), makeRecord({ userId: user, ttlMs: 20_000 }));
    const indexTtl = await admin.pttl(`${prefix}{u:${user}}`);
    expect(indexTtl).toBeGreaterThan(15_000);
    expect(indexTtl).toBeLessThanOrEqual(20_000);
    expect(await admin.zcard(`${prefix}{u:${user}}`)).toBe(2);
  });

  it('listByUser prunes entries of destroyed and expired sessions, and never lists a session that moved to another user', async () => {
    const user = 'u-' + randomBytes(4).toString('hex');
    const [kept, destroyed, expiring, moved] = [newId(), newId(), newId(), newId()];
    await driver.write(kept, makeRecord({ userId: user }));
    await driver.write(destroyed, makeRecord({ userId: user }));
    await driver.write(expiring, makeRecord({ userId: user, ttlMs: 150 }));
    await driver.write(moved, makeRecord({ userId: user }));
    await driver.destroy(destroyed);
    // Moves to another user: its entry in the first user's index stays until a reader prunes it.
    await driver.write(moved, makeRecord({ userId: 'someone-else' }));
    await sleep(250);
    expect((await driver.listByUser(user)).map((s) => s.id)).toEqual([kept]);
    expect(await admin.zrange(`${prefix}{u:${user}}`, '0', '-1')).toEqual([kept]);
    expect(await driver.destroyByUser(user)).toBe(1);
    expect(await driver.read(moved)).not.toBeNull();
  });

  it('user IDs with braces, spaces or non-ASCII characters get their own index', async () => {
    const users = ['{weird}', 'a b}', 'Zoë 🐒', '42'];
    const ids = users.map(() => newId());
    for (let i = 0; i < users.length; i++) await driver.write(ids[i], makeRecord({ userId: users[i] }));
    for (let i = 0; i < users.length; i++) expect((await driver.listByUser(users[i])).map((s) => s.id)).toEqual([ids[i]]);
    // Logging out (userId back to null) removes the session from its former user's index.
    await driver.write(ids[0], makeRecord({ userId: null }));
    expect(await driver.listByUser(users[0])).toEqual([]);
    expect(await admin.exists(`${prefix}{u:${users[0]}}`)).toBe(0);
  });

  it('a waiter wakes soon after an early release instead of sleeping out the holder TTL', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 20_000 });
    let acquiredAt = 0;
    const waiting = driver.lockAndRead(id, { waitMs: 5000, ttlMs: 10_000 }).then((r) => ((acquiredAt = Date.now()), r));
    await sleep(300);
    await driver.write(id, makeRecord({ payload: 'from-holder' }), token);
    const releasedAt = Date.now();
    await driver.unlock(id, token);
    const second = await waiting;
    expect(second.record!.payload).toBe('from-holder');
    expect(acquiredAt - releasedAt).toBeLessThan(600); // polling caps its sleep at 50 ms; generous for loaded CI machines
    await driver.unlock(id, second.token);
  });

  it('writeAndUnlock with a token that never held the lock is refused and writes nothing', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'original' }));
    await expect(driver.writeAndUnlock(id, makeRecord({ payload: 'forged' }), 'forged-token')).rejects.toBeInstanceOf(SessionLockException);
    expect((await driver.read(id))!.payload).toBe('original');
  });

  it('a corrupt record reads as absent instead of failing every request of that session', async () => {
    const corrupt = ['', 'no line breaks', `${Date.now() + 60_000}\n{not json\npayload`, `soon\n{}\npayload`, `${Date.now() + 60_000}\nnull\npayload`];
    for (const value of corrupt) {
      const id = newId();
      await admin.set(`${prefix}{${id}}`, value, 'PX', 60_000);
      expect(await driver.read(id)).toBeNull();
      const { token, record } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(record).toBeNull();
      await driver.writeAndUnlock(id, makeRecord({ payload: 'fresh' }), token);
      expect((await driver.read(id))!.payload).toBe('fresh');
    }
  });

  it('a key of another type at a record name (e.g. left by another program) reads as absent, and the next write replaces it', async () => {
    const id = newId();
    await admin.hset(`${prefix}{${id}}`, 'p', 'x');
    expect(await driver.read(id)).toBeNull();
    const { token, record } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
    expect(record).toBeNull();
    await driver.writeAndUnlock(id, makeRecord({ payload: 'fresh' }), token);
    expect((await driver.read(id))!.payload).toBe('fresh');
    expect(await admin.exists(`${prefix}{${id}}:lock`)).toBe(0);
  });

  it('destroyByUser passes over a key of another type in the index (a record from an old layout) and still destroys the rest', async () => {
    const user = 'u-' + randomBytes(4).toString('hex');
    const [odd, normal] = [newId(), newId()];
    await driver.write(odd, makeRecord({ userId: user }));
    await driver.write(normal, makeRecord({ userId: user }));
    await admin.del(`${prefix}{${odd}}`);
    await admin.hset(`${prefix}{${odd}}`, 'p', 'x');
    expect(await driver.destroyByUser(user)).toBe(1);
    expect(await driver.read(normal)).toBeNull();
    expect(await admin.exists(`${prefix}{u:${user}}`)).toBe(0); // the index is emptied, not left to fail again
    expect(await admin.type(`${prefix}{${odd}}`)).toBe('hash'); // not ours to delete
  });

  it('a lock taken whose record read failed is given back at once, not left until its TTL', async () => {
    const client = new Redis(URL);
    // The application's client, with GET failing as if the reply were an error.
    const failingGet = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'get') return () => Promise.reject(new Error('ERR injected failure'));
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const shared = new RedisDriver({ client: failingGet, keyPrefix: prefix });
    try {
      await shared.open();
      const id = newId();
      await expect(shared.lockAndRead(id, { waitMs: 1000, ttlMs: 30_000 })).rejects.toBeInstanceOf(SessionException);
      expect(await admin.exists(`${prefix}{${id}}:lock`)).toBe(0);
    } finally {
      await shared.close();
      await client.quit();
    }
  });

  it('stores a record as one string with a TTL, and a payload with line breaks survives', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'line 1\nline 2\n\n' }));
    expect(await admin.type(`${prefix}{${id}}`)).toBe('string');
    expect((await driver.read(id))!.payload).toBe('line 1\nline 2\n\n');
  });

  it('uses an application client as given: its own keyPrefix is honoured and close() leaves it connected', async () => {
    const appPrefix = `mlt:${randomBytes(6).toString('hex')}:app:`;
    const client = new Redis(URL, { keyPrefix: appPrefix });
    const shared = new RedisDriver({ client });
    try {
      await shared.open();
      const id = newId();
      await shared.write(id, makeRecord({ userId: 'alice' }));
      expect(await admin.exists(`${appPrefix}ml_sess:{${id}}`)).toBe(1);
      expect(await admin.zrange(`${appPrefix}ml_sess:{u:alice}`, '0', '-1')).toEqual([id]);
      await shared.write(id, makeRecord({ userId: 'bob' }));
      expect(await admin.zrange(`${appPrefix}ml_sess:{u:bob}`, '0', '-1')).toEqual([id]);
      expect(await shared.listByUser('alice')).toEqual([]);
      expect(await admin.exists(`${appPrefix}ml_sess:{u:alice}`)).toBe(0);
      await shared.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      await deleteKeys(admin, `${appPrefix}*`);
      await client.quit();
    }
  });

  it('builds its client from ioredis options alone (host/port), and quits it on close()', async () => {
    const own = new RedisDriver({ options: { host: '127.0.0.1', port: 6379 }, keyPrefix: prefix });
    await own.open();
    const id = newId();
    await own.write(id, makeRecord());
    expect(await own.read(id)).not.toBeNull();
    await own.close();
    await expect(own.read(id)).rejects.toThrow(/closed/);
  });
});

describe('RedisDriver through Sentinel (ioredis options) and the factory', () => {
  let master: RedisServerHandle;
  let sentinel: RedisServerHandle;

  beforeAll(async () => {
    master = await startRedisServer();
    sentinel = await startRedisServer({ sentinelFor: { name: 'ml-master', host: master.host, port: master.port } });
  });
  afterAll(async () => {
    await sentinel?.stop();
    await master?.stop();
  });

  it('finds the master through Sentinel and serves a full request cycle', async () => {
    const driver = await DriverFactory.create({
      driver: 'redis',
      redis: { options: { sentinels: [{ host: sentinel.host, port: sentinel.port }], name: 'ml-master' }, keyPrefix: 'sentinel-test:' },
    });
    expect(driver).toBeInstanceOf(RedisDriver);
    await driver.open();
    try {
      const id = newId();
      const first = await driver.lockAndRead!(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.writeAndUnlock!(id, makeRecord({ payload: 'via-sentinel', userId: 'dora' }), first.token);
      expect((await driver.read(id))!.payload).toBe('via-sentinel');
      expect((await driver.listByUser('dora')).map((s) => s.id)).toEqual([id]);
      // The data really is on the monitored master.
      const direct = new Redis(master.url);
      expect(await direct.exists(`sentinel-test:{${id}}`)).toBe(1);
      await direct.quit();
    } finally {
      await driver.close();
    }
  });
});
