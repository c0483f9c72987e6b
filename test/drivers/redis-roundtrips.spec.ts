/**
 * Round trips, counted on the server: a private redis-server, MONITOR, and only the top-level
 * commands of the driver's own connection (commands a Lua script runs show up as source "lua" and
 * cost no round trip). Each command the driver sends waits for its reply before the next one
 * depends on it, so commands here are round trips. The Cluster counts are in redis-cluster.driver.spec.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';
import { makeRecord, newId } from '../support/records.js';
import { startRedisServer, watchCommands, type CommandWatcher, type RedisServerHandle } from '../support/redis-cluster.js';

describe('RedisDriver round trips (counted by MONITOR on a private server)', () => {
  const connectionName = `ml-sess-rt-${randomBytes(4).toString('hex')}`;
  let server: RedisServerHandle;
  let driver: RedisDriver;
  let admin: Redis;
  let watcher: CommandWatcher;
  const commandsOf = (fn: () => Promise<unknown>): Promise<string[]> => watcher.commandsOf(fn);

  beforeAll(async () => {
    server = await startRedisServer();
    driver = new RedisDriver({ url: server.url, options: { connectionName } });
    await driver.open();
    admin = new Redis(server.url);
    watcher = await watchCommands([server], connectionName);
  });
  afterAll(async () => {
    await driver?.close();
    await watcher?.stop();
    await admin?.quit();
    await server?.stop();
  });

  it('read() is one round trip', async () => {
    const id = newId();
    await driver.write(id, makeRecord());
    expect(await commandsOf(() => driver.read(id))).toEqual(['hmget']);
  });

  it('a lockAndRead + writeAndUnlock request cycle is two round trips, signed in or not, user change included', async () => {
    const id = newId();
    for (const userId of [null, 'alice', 'alice', 'bob', null]) {
      const commands = await commandsOf(async () => {
        const { token } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
        await driver.writeAndUnlock(id, makeRecord({ userId }), token);
      });
      expect(commands).toEqual(['evalsha', 'evalsha']);
    }
    expect((await driver.listByUser('bob')).length).toBe(0);
  });

  it('unlock is one round trip (compare-and-delete)', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
    expect(await commandsOf(() => driver.unlock(id, token))).toEqual(['evalsha']);
  });

  it('a waiter sleeps between attempts (5 ms doubling to 50 ms) instead of hammering the server', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 1000, ttlMs: 400 });
    const commands = await commandsOf(() => driver.lock(id, { waitMs: 2000, ttlMs: 10_000 }).then((t) => driver.unlock(id, t)));
    // ~400 ms of waiting: 5+10+20+40 then every 50 ms ≈ 11 attempts, then the unlock.
    expect(commands.length).toBeGreaterThanOrEqual(3);
    expect(commands.length).toBeLessThanOrEqual(16);
    await driver.unlock(id, token);
  });

  it('after the server lost its scripts (SCRIPT FLUSH), calls still work and fall back to EVAL once', async () => {
    await admin.script('FLUSH');
    const id = newId();
    const first = await commandsOf(async () => {
      const { token } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.writeAndUnlock(id, makeRecord({ payload: 'after-flush', userId: 'carol' }), token);
    });
    expect(first).toEqual(['evalsha', 'eval', 'evalsha', 'eval']);
    const second = await commandsOf(async () => {
      const { token, record } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(record!.payload).toBe('after-flush');
      await driver.writeAndUnlock(id, makeRecord({ userId: 'carol' }), token);
    });
    expect(second).toEqual(['evalsha', 'evalsha']);
  });
});
