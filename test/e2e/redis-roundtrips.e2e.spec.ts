/**
 * Round trips per HTTP request through the whole module, counted on the wire by a proxy in front
 * of a private redis-server: ≤ 2 for a request that loads and saves, 1 for @SessionReadOnly(), 0
 * without a session.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { EXTEND_SCRIPT, UNLOCK_SCRIPT, WRITE_SCRIPT } from '../../lib/drivers/redis-scripts.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-cluster.js';
import { CountingRedisProxy, evalsha } from '../support/redis-counting-proxy.js';

describe.each(PLATFORMS)('Redis round trips per request (%s)', (platform) => {
  let server: RedisServerHandle;
  let proxy: CountingRedisProxy;
  let t: TestApp;
  const burstsOf = (fn: () => Promise<unknown>): Promise<string[][]> => proxy.burstsOf(fn);

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = new CountingRedisProxy(0, { host: server.host, port: server.port });
    await proxy.start();
    t = await createTestApp(platform, { driver: 'redis', redis: { url: `redis://127.0.0.1:${proxy.port}` } });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.stop();
    await server?.stop();
  });

  it('a request without a session cookie that never touches the session: 0', async () => {
    const b = t.browser();
    expect(await burstsOf(() => b.get('/s/untouched'))).toEqual([]);
    expect(await burstsOf(() => b.get('/s/get'))).toEqual([]);
  });

  it('a request that loads and changes the session: 2 (lock+read, write+unlock)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    for (let i = 0; i < 3; i++) expect(await burstsOf(() => b.post('/s/increment'))).toEqual([['SET', 'GET'], [evalsha(WRITE_SCRIPT)]]);
    expect((await b.get('/s/get')).body.data.counter).toBe(3);
  });

  it('a request that loads and only reads (locking route): 2 (lock+read, unlock)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    expect(await burstsOf(() => b.get('/s/get'))).toEqual([['SET', 'GET'], [evalsha(UNLOCK_SCRIPT)]]);
  });

  it('a @SessionReadOnly() request: 1', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    expect(await burstsOf(() => b.get('/s/slow-read?ms=0'))).toEqual([['GET']]);
  });

  it('a hot session: 20 concurrent changes in one process never poll the lock; a waiting request gets it handed over (one round trip)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    proxy.reset();
    // The first request holds the lock long enough for the others to queue behind it in this process.
    const first = b.post('/s/slow-increment?ms=300');
    await new Promise((r) => setTimeout(r, 100));
    await Promise.all([first, ...Array.from({ length: 19 }, () => b.post('/s/increment'))]);
    const counts = proxy.snapshot();
    const locks = counts.byName.SET ?? 0;
    const handOvers = counts.byName[evalsha(EXTEND_SCRIPT)] ?? 0;
    // Every request either took the store lock (SET NX + GET, no retries) or was handed it (its predecessor renewed it).
    expect(locks + handOvers).toBe(20);
    expect(counts.byName.GET).toBe(locks);
    expect(handOvers).toBeGreaterThan(0);
    expect(counts.byName[evalsha(WRITE_SCRIPT)]).toBe(20);
    expect(counts.roundTrips).toBeLessThanOrEqual(2 * locks + handOvers);
    expect((await b.get('/s/get')).body.data.counter).toBe(20);
  });

  it('a new session: 1 write, no lock', async () => {
    const b = t.browser();
    expect(await burstsOf(() => b.post('/s/set', { a: 1 }))).toEqual([['SET']]);
  });
});
