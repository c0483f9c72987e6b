/**
 * The store lock handed from one request to the next request of the same session in this
 * process (SessionManager + LocalLockQueue), against a MemoryDriver that counts its calls.
 */
import { describe, it, expect } from '@jest/globals';
import { SessionManager } from '../../lib/core/session-manager.js';
import { resolveSessionOptions } from '../../lib/core/session-options.resolver.js';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { JsonSerializer } from '../../lib/serializers/json.serializer.js';
import type { RequestFacts } from '../../lib/core/request-facts.interface.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';

type Counted = SessionDriver & { calls: string[] };

/** A MemoryDriver whose calls are recorded by name; `extend` can be removed to model a driver without it. */
function countingDriver(withExtend = true): Counted {
  const inner = new MemoryDriver();
  const calls: string[] = [];
  const names = ['open', 'close', 'read', 'write', 'destroy', 'gc', 'lock', 'unlock', 'lockAndRead', 'writeAndUnlock', 'listByUser', 'destroyByUser', ...(withExtend ? ['extend'] : [])];
  const driver: Record<string, unknown> = { calls };
  for (const name of names) {
    const fn = (inner as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
    if (typeof fn !== 'function') continue;
    driver[name] = (...args: unknown[]) => {
      calls.push(name);
      return fn.apply(inner, args);
    };
  }
  return driver as unknown as Counted;
}

const facts = (cookieId: string | null): RequestFacts => ({ cookieId, hadCookie: cookieId !== null, ip: '127.0.0.1', userAgent: 'jest' });

async function setUp(withExtend = true): Promise<{ manager: SessionManager; driver: Counted; id: string }> {
  const driver = countingDriver(withExtend);
  const manager = new SessionManager(resolveSessionOptions({ driver: 'memory' }), driver, new JsonSerializer());
  const { id } = await manager.create({ data: { counter: 0 }, userAgent: 'jest', ipAddress: '127.0.0.1' });
  driver.calls.length = 0;
  return { manager, driver, id };
}

describe('SessionManager: lock hand-over between requests of one session in one process', () => {
  it('a waiting request gets the lock and the fresh record from the holder: no unlock, no second lock', async () => {
    const { manager, driver, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false); // waits in the local queue
    first.set('counter', 1);
    await manager.persist(first, true);
    const next = await second;
    expect(next.get('counter')).toBe(1);
    next.set('counter', 2);
    await manager.persist(next, true);
    // MemoryDriver has no combined lockAndRead / writeAndUnlock: lock + read, write + unlock.
    expect(driver.calls).toEqual(['lock', 'read', 'write', 'extend', 'write', 'unlock']);
    // The lock is really free and the data really stored.
    const third = await manager.start(facts(id), false);
    expect(third.get('counter')).toBe(2);
    await manager.persist(third, true);
  });

  it('a holder that changed nothing hands over the record it read, after renewing the lock', async () => {
    const { manager, driver, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    expect(first.get('counter')).toBe(0);
    await manager.persist(first, true);
    const next = await second;
    expect(next.get('counter')).toBe(0);
    await manager.persist(next, true);
    expect(driver.calls).toEqual(['lock', 'read', 'extend', 'unlock']);
  });

  it('after save() mid-request, a commit with nothing left to write hands over the saved record, not the one read at start', async () => {
    const { manager, driver, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    first.set('counter', 7);
    first.setUserId('alice');
    await first.save();
    await manager.persist(first, true); // nothing due: the save wrote everything
    const next = await second;
    expect(next.get('counter')).toBe(7);
    expect(next.getUserId()).toBe('alice');
    next.set('other', 1);
    await manager.persist(next, true);
    // The next request's write must not put the pre-save value back.
    const third = await manager.start(facts(id), false);
    expect(third.get('counter')).toBe(7);
    expect(third.getUserId()).toBe('alice');
    await manager.persist(third, true);
    expect(driver.calls.slice(0, 5)).toEqual(['lock', 'read', 'write', 'extend', 'write']);
  });

  it('the next request mutating its metadata does not touch what the previous one handed over', async () => {
    const { manager, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    first.set('counter', 1);
    await manager.persist(first, true);
    const next = await second;
    next.setUserId('alice');
    expect(first.getUserId()).toBeNull();
    await manager.persist(next, true);
  });

  it('without extend() in the driver there is no hand-over: unlock, then the next request locks', async () => {
    const { manager, driver, id } = await setUp(false);
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    first.set('counter', 1);
    await manager.persist(first, true);
    const next = await second;
    expect(next.get('counter')).toBe(1);
    await manager.persist(next, true);
    expect(driver.calls).toEqual(['lock', 'read', 'write', 'unlock', 'lock', 'read', 'unlock']);
  });

  it('a regenerated session is not handed over (its lock is on the old ID)', async () => {
    const { manager, driver, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    first.regenerate();
    await manager.persist(first, true);
    const next = await second; // the old ID is gone: a fresh, empty session
    expect(next.get('counter')).toBeUndefined();
    await manager.persist(next, true);
    expect(driver.calls.filter((c) => c === 'extend')).toEqual([]);
  });

  it('a failed write hands nothing over: the lock is released and the next request reads the store', async () => {
    const { manager, driver, id } = await setUp();
    const first = await manager.start(facts(id), false);
    const second = manager.start(facts(id), false);
    first.set('big', 'x'.repeat(5_000_000)); // over maxPayloadBytes: the commit fails, nothing is stored
    await expect(manager.persist(first, true)).rejects.toThrow(/maxPayloadBytes/);
    const next = await second;
    expect(next.get('big')).toBeUndefined();
    expect(next.get('counter')).toBe(0);
    await manager.persist(next, true);
    expect(driver.calls).toEqual(['lock', 'read', 'unlock', 'lock', 'read', 'unlock']);
  });
});
