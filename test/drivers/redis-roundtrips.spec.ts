/**
 * Round trips, counted on the wire: a private redis-server behind a counting proxy that groups the
 * driver's commands into round trips (commands sent without waiting for a reply share one).
 * The Cluster counts are in redis-cluster.driver.spec.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';
import { UNLOCK_SCRIPT, WRITE_SCRIPT } from '../../lib/drivers/redis-scripts.js';
import { makeRecord, newId } from '../support/records.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-cluster.js';
import { CountingRedisProxy, evalsha } from '../support/redis-counting-proxy.js';

describe('RedisDriver round trips (counted by a proxy in front of a private server)', () => {
  let server: RedisServerHandle;
  let proxy: CountingRedisProxy;
  let driver: RedisDriver;
  let admin: Redis;
  const burstsOf = (fn: () => Promise<unknown>): Promise<string[][]> => proxy.burstsOf(fn);

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = new CountingRedisProxy(0, { host: server.host, port: server.port });
    await proxy.start();
    driver = new RedisDriver({ url: `redis://127.0.0.1:${proxy.port}` });
    await driver.open();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    await driver?.close();
    await proxy?.stop();
    await admin?.quit();
    await server?.stop();
  });

  it('read() is one round trip (GET)', async () => {
    const id = newId();
    await driver.write(id, makeRecord());
    expect(await burstsOf(() => driver.read(id))).toEqual([['GET']]);
  });

  it('a lockAndRead + writeAndUnlock request cycle is two round trips, one script; signed in or not, user change included', async () => {
    const id = newId();
    const index = ['ZADD', 'ZREMRANGEBYSCORE', 'PEXPIRE', 'PEXPIRE'];
    for (const userId of [null, 'alice', 'alice', 'bob', null]) {
      const bursts = await burstsOf(async () => {
        const { token } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
        await driver.writeAndUnlock(id, makeRecord({ userId }), token);
      });
      expect(bursts).toEqual([['SET', 'GET'], [...(userId ? index : []), evalsha(WRITE_SCRIPT)]]);
    }
    expect((await driver.listByUser('bob')).length).toBe(0);
  });

  it('a write without a lock token is one plain SET', async () => {
    expect(await burstsOf(() => driver.write(newId(), makeRecord()))).toEqual([['SET']]);
  });

  it('unlock is one round trip (compare-and-delete)', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
    expect(await burstsOf(() => driver.unlock(id, token))).toEqual([[evalsha(UNLOCK_SCRIPT)]]);
  });

  it('commands of concurrent calls issued in one event-loop turn leave in one write', async () => {
    const ids = [newId(), newId(), newId()];
    for (const id of ids) await driver.write(id, makeRecord());
    expect(await burstsOf(() => Promise.all(ids.map((id) => driver.read(id))))).toEqual([['GET', 'GET', 'GET']]);
  });

  it('a waiter sleeps between attempts (5 ms doubling to 50 ms) instead of hammering the server', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 400 });
    const bursts = await burstsOf(() => driver.lock(id, { waitMs: 2000, ttlMs: 10_000 }).then((t) => driver.unlock(id, t)));
    // ~400 ms of waiting: 5+10+20+40 then every 50 ms ≈ 11 attempts, then the unlock.
    expect(bursts.length).toBeGreaterThanOrEqual(3);
    expect(bursts.length).toBeLessThanOrEqual(16);
    await driver.unlock(id, token);
  });

  it('after the server lost its scripts (SCRIPT FLUSH), calls still work and fall back to EVAL once', async () => {
    await admin.script('FLUSH');
    const id = newId();
    const first = await burstsOf(async () => {
      const { token } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.writeAndUnlock(id, makeRecord({ payload: 'after-flush' }), token);
    });
    expect(first).toEqual([['SET', 'GET'], [evalsha(WRITE_SCRIPT)], ['EVAL']]);
    const second = await burstsOf(async () => {
      const { token, record } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(record!.payload).toBe('after-flush');
      await driver.writeAndUnlock(id, makeRecord(), token);
    });
    expect(second).toEqual([['SET', 'GET'], [evalsha(WRITE_SCRIPT)]]);
  });
});
