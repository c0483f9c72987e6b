/**
 * Store outages, on a private redis-server this file starts, stops (SIGTERM), pauses (SIGSTOP: a
 * server that keeps its sockets but answers nothing) and restarts on the same port. A driver call
 * during an outage must fail within a bounded time with SessionStoreUnavailableException (503),
 * never read as "no session", never leave an unhandled rejection, and the same driver instance
 * must work again once Redis is back.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisDriver } from '../../lib/drivers/redis.driver.js';
import { SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { makeRecord, newId, sleep, waitForRecovery } from '../support/records.js';
import { freePort, startRedisServer, type RedisServerHandle } from '../support/redis-cluster.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

/** Every driver call, each expected to fail with 503 while the store is down. */
function allCalls(driver: SessionDriver, id: string): Array<[string, () => Promise<unknown>]> {
  const lock = { waitMs: 1000, ttlMs: 10_000 };
  return [
    ['read', () => driver.read(id)],
    ['write', () => driver.write(id, makeRecord())],
    ['write (fenced)', () => driver.write(id, makeRecord(), 'some-token')],
    ['destroy', () => driver.destroy(id)],
    ['lock', () => driver.lock(id, lock)],
    ['unlock', () => driver.unlock(id, 'some-token')],
    ['lockAndRead', () => driver.lockAndRead!(id, lock)],
    ['writeAndUnlock', () => driver.writeAndUnlock!(id, makeRecord(), 'some-token')],
    ['listByUser', () => driver.listByUser('someone')],
    ['destroyByUser', () => driver.destroyByUser('someone')],
  ];
}

/** Runs every call, asserts each one fails with 503 within `boundMs`, and returns the slowest failure in ms. */
async function expectAllUnavailable(driver: SessionDriver, id: string, boundMs: number): Promise<number> {
  let slowest = 0;
  for (const [name, call] of allCalls(driver, id)) {
    const started = Date.now();
    const outcome = await call().then(
      () => 'resolved',
      (err: unknown) => err,
    );
    const took = Date.now() - started;
    slowest = Math.max(slowest, took);
    expect({ name, isUnavailable: outcome instanceof SessionStoreUnavailableException }).toEqual({ name, isUnavailable: true });
    expect({ name, status: (outcome as SessionStoreUnavailableException).getStatus() }).toEqual({ name, status: 503 });
    expect({ name, fast: took < boundMs }).toEqual({ name, fast: true });
  }
  return slowest;
}


describe('RedisDriver during a Redis outage', () => {
  let server: RedisServerHandle;
  /** Restarts reuse the port: clients reconnect to the address they know. */
  let port = 0;

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startRedisServer();
    port = server.port;
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.stop();
  });

  describe('with a client the driver created', () => {
    let driver: RedisDriver;

    beforeAll(async () => {
      driver = new RedisDriver({ url: server.url });
      await driver.open();
    });
    afterAll(async () => {
      await driver.close();
    });

    it('stopped server: every call fails fast with 503, and the same driver recovers after a restart on the same port', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      await server.stop();
      const slowest = await expectAllUnavailable(driver, id, 1000);
      expect(slowest).toBeLessThan(1000);
      server = await startRedisServer({ port: port });
      const recoveredIn = await waitForRecovery(driver, 5000);
      expect(recoveredIn).toBeLessThan(5000);
    }, 30_000);

    it('hung server (SIGSTOP): a call fails with 503 after about commandTimeout, and the stored session is intact afterwards', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'live-session' }));
      server.pause();
      try {
        const started = Date.now();
        const readOutcome = await driver.read(id).then(
          () => 'resolved',
          (err: unknown) => err,
        );
        const took = Date.now() - started;
        expect(readOutcome).toBeInstanceOf(SessionStoreUnavailableException);
        expect(took).toBeGreaterThanOrEqual(1500);
        expect(took).toBeLessThan(3500);
        // A lock wait against a hung store is an outage (503), not "someone holds the lock" (423).
        await expect(driver.lock(id, { waitMs: 10_000, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionStoreUnavailableException);
      } finally {
        server.resume();
      }
      // The failed read never became "no session", so nothing was written over the live one.
      expect((await driver.read(id))!.payload).toBe('live-session');
    }, 30_000);
  });

  describe('with a client the application passed in (ioredis defaults: offline queue on)', () => {
    let client: Redis;
    let driver: RedisDriver;

    beforeAll(async () => {
      client = new Redis(server.url, { retryStrategy: () => 100 });
      client.on('error', () => {}); // the application's concern; keeps the test output quiet
      driver = new RedisDriver({ client });
      await driver.open();
    });
    afterAll(async () => {
      await driver.close();
      client.disconnect();
    });

    it('stopped server: calls fail fast with 503 instead of queueing, and the driver recovers with the client', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      await server.stop();
      await sleep(50);
      await expectAllUnavailable(driver, id, 1000);
      server = await startRedisServer({ port: port });
      expect(await waitForRecovery(driver, 5000)).toBeLessThan(5000);
      expect(client.status).toBe('ready');
    }, 30_000);

    it('hung server: the driver bounds a call on a client without commandTimeout by its own deadline', async () => {
      const id = newId();
      server.pause();
      try {
        const started = Date.now();
        await expect(driver.read(id)).rejects.toBeInstanceOf(SessionStoreUnavailableException);
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(4500);
        expect(took).toBeLessThan(6500);
      } finally {
        server.resume();
      }
      expect(await driver.read(id)).toBeNull();
    }, 30_000);
  });

  it('open() with Redis down fails with 503 within its start-up timeout', async () => {
    const deadPort = await freePort();
    const driver = new RedisDriver({ url: `redis://127.0.0.1:${deadPort}` });
    const started = Date.now();
    await expect(driver.open()).rejects.toBeInstanceOf(SessionStoreUnavailableException);
    expect(Date.now() - started).toBeLessThan(7000);
    await driver.close();
  }, 30_000);

  it('left no unhandled rejection behind', async () => {
    await sleep(100);
    expect(unhandled).toEqual([]);
  });
});
