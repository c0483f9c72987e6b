/**
 * RedisDriver against a real 3-master Redis Cluster, started by this file from the installed
 * `redis-server` on free ports and stopped afterwards: the conformance suite, then what only a
 * cluster shows (sessions spread over slots, the user index in another slot, an application's client).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';
import { describeDriverConformance } from './driver-conformance.js';
import { makeRecord, newId } from '../support/records.js';
import { startRedisCluster, watchCommands, type RedisClusterHandle } from '../support/redis-cluster.js';

let cluster: RedisClusterHandle;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
}, 30_000);

describeDriverConformance('redis (cluster, 3 masters)', async () => ({
  driver: new RedisDriver({ cluster: cluster.nodes, keyPrefix: `mlt:${randomBytes(4).toString('hex')}:` }),
  cleanup: async () => {}, // the whole cluster is thrown away
}));

describe('RedisDriver (cluster specifics)', () => {
  const prefix = `mlt:${randomBytes(4).toString('hex')}:`;
  let driver: RedisDriver;
  let admin: Cluster;

  beforeAll(async () => {
    driver = new RedisDriver({ cluster: cluster.nodes, keyPrefix: prefix });
    await driver.open();
    admin = new Cluster(cluster.nodes);
  });
  afterAll(async () => {
    await driver.close();
    await admin.quit();
  });

  it('spreads sessions over the masters, each session with its lock in one slot', async () => {
    const ids = Array.from({ length: 24 }, () => newId());
    for (const id of ids) {
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.writeAndUnlock(id, makeRecord({ userId: 'spread-user' }), token);
    }
    const perMaster = await Promise.all(admin.nodes('master').map((node) => node.dbsize()));
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    const slots = await Promise.all(
      ids.slice(0, 3).flatMap((id) => [admin.cluster('KEYSLOT', `${prefix}{${id}}`), admin.cluster('KEYSLOT', `${prefix}{${id}}:lock`)]),
    );
    expect(slots[0]).toBe(slots[1]);
    expect(slots[2]).toBe(slots[3]);
    expect((await driver.listByUser('spread-user')).length).toBe(24);
    expect(await driver.destroyByUser('spread-user', ids[0])).toBe(23);
    expect((await driver.listByUser('spread-user')).map((s) => s.id)).toEqual([ids[0]]);
  });

  it('moves a session between user indexes that live on other nodes than the session', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ userId: 'alice' }));
    await driver.write(id, makeRecord({ userId: 'bob' }));
    expect(await admin.zrange(`${prefix}{u:bob}`, '0', '-1')).toEqual([id]);
    expect(await admin.pttl(`${prefix}{u:bob}`)).toBeGreaterThan(50_000);
    // alice's index still names the session until a reader sees that it moved, and prunes it.
    expect(await driver.listByUser('alice')).toEqual([]);
    expect(await admin.exists(`${prefix}{u:alice}`)).toBe(0);
    await driver.write(id, makeRecord({ userId: null }));
    expect(await driver.destroyByUser('bob')).toBe(0);
    expect(await driver.read(id)).not.toBeNull();
    expect(await admin.exists(`${prefix}{u:bob}`)).toBe(0);
  });

  it('uses an application Cluster client and leaves it connected on close()', async () => {
    const client = new Cluster(cluster.nodes);
    const shared = new RedisDriver({ client, keyPrefix: prefix });
    try {
      await shared.open();
      const id = newId();
      const { token, record } = await shared.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(record).toBeNull();
      await shared.writeAndUnlock(id, makeRecord({ payload: 'shared' }), token);
      expect((await shared.read(id))!.payload).toBe('shared');
      await shared.close();
      expect(client.status).toBe('ready');
      expect(await client.get('anything')).toBeNull();
    } finally {
      await client.quit();
    }
  });
});

describe('RedisDriver round trips on Cluster (counted by MONITOR on every master)', () => {
  const connectionName = `ml-sess-crt-${randomBytes(4).toString('hex')}`;

  it('read is one GET; a request cycle is SET NX + GET, then the write script; signed in, the index commands go first', async () => {
    const driver = new RedisDriver({ cluster: cluster.nodes, options: { redisOptions: { connectionName } }, keyPrefix: `mlt:${randomBytes(4).toString('hex')}:` });
    await driver.open();
    const watcher = await watchCommands(cluster.nodes, connectionName);
    try {
      const id = newId();
      const cycle = (userId: string | null) => async () => {
        const { token } = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
        await driver.writeAndUnlock(id, makeRecord({ userId }), token);
      };
      await cycle(null)(); // warms the connection to the session's node
      const signedIn = ['evalsha', 'get', 'pexpire', 'pexpire', 'set', 'zadd', 'zremrangebyscore'];
      expect(await watcher.commandsOf(() => driver.read(id))).toEqual(['get']);
      expect(await watcher.commandsOf(cycle(null))).toEqual(['set', 'get', 'evalsha']);
      expect((await watcher.commandsOf(cycle('alice'))).sort()).toEqual(signedIn);
      expect((await watcher.commandsOf(cycle('alice'))).sort()).toEqual(signedIn);
      expect((await watcher.commandsOf(cycle('bob'))).sort()).toEqual(signedIn);
    } finally {
      await watcher.stop();
      await driver.close();
    }
  });
});
