/**
 * Round trips per HTTP request through the whole module, counted by MONITOR on a private
 * redis-server: ≤ 2 for a request that loads and saves, 1 for @SessionReadOnly(), 0 without a session.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { startRedisServer, watchCommands, type CommandWatcher, type RedisServerHandle } from '../support/redis-cluster.js';

describe.each(PLATFORMS)('Redis round trips per request (%s)', (platform) => {
  const connectionName = `ml-sess-e2e-${randomBytes(4).toString('hex')}`;
  let server: RedisServerHandle;
  let watcher: CommandWatcher;
  let t: TestApp;

  beforeAll(async () => {
    server = await startRedisServer();
    t = await createTestApp(platform, { driver: 'redis', redis: { url: server.url, options: { connectionName } } });
    watcher = await watchCommands([server], connectionName);
  });
  afterAll(async () => {
    await t?.close();
    await watcher?.stop();
    await server?.stop();
  });

  it('a request without a session cookie that never touches the session: 0', async () => {
    const b = t.browser();
    expect(await watcher.commandsOf(() => b.get('/s/untouched'))).toEqual([]);
    expect(await watcher.commandsOf(() => b.get('/s/get'))).toEqual([]);
  });

  it('a request that loads and changes the session: 2 (lock+read, write+unlock)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    for (let i = 0; i < 3; i++) expect((await watcher.commandsOf(() => b.post('/s/increment'))).length).toBe(2);
    expect((await b.get('/s/get')).body.data.counter).toBe(3);
  });

  it('a request that loads and only reads (locking route): 2 (lock+read, unlock)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    expect((await watcher.commandsOf(() => b.get('/s/get'))).length).toBe(2);
  });

  it('a @SessionReadOnly() request: 1', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    expect(await watcher.commandsOf(() => b.get('/s/slow-read?ms=0'))).toHaveLength(1);
  });

  it('a hot session: 20 concurrent changes in one process cost exactly 2 round trips each (no lock polling)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    const commands = await watcher.commandsOf(() => Promise.all(Array.from({ length: 20 }, () => b.post('/s/increment'))));
    expect(commands).toHaveLength(40);
    expect((await b.get('/s/get')).body.data.counter).toBe(20);
  });

  it('a new session: 1 write, no lock', async () => {
    const b = t.browser();
    expect((await watcher.commandsOf(() => b.post('/s/set', { a: 1 }))).length).toBe(1);
  });
});
