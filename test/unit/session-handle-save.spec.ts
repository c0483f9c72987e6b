/**
 * Handle call sequences against a real manager: save() while its write is in flight (changes made
 * meanwhile must not be wiped by the write's bookkeeping: refused with a clear error; saves queue;
 * the commit waits), and the life events of a session regenerated or invalidated before its first write.
 */
import { describe, it, expect, jest, beforeEach, afterEach } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { SessionException, SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import { SessionManager } from '../../lib/core/session-manager.js';
import { resolveSessionOptions } from '../../lib/core/session-options.resolver.js';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { JsonSerializer } from '../../lib/serializers/json.serializer.js';
import type { RequestFacts } from '../../lib/core/request-facts.interface.js';
import { SessionHandle } from '../../lib/core/session-handle.js';

const facts = (cookieId: string | null): RequestFacts => ({ cookieId, hadCookie: cookieId !== null, ip: '127.0.0.1', userAgent: 'jest' });

async function setUp(): Promise<{ manager: SessionManager; driver: MemoryDriver; id: string }> {
  const driver = new MemoryDriver();
  const manager = new SessionManager(resolveSessionOptions({ driver: 'memory' }), driver, new JsonSerializer());
  const { id } = await manager.create({ data: { a: 0 }, userAgent: 'jest', ipAddress: '127.0.0.1' });
  return { manager, driver, id };
}

/** Writes take 30 ms, as over a network: long enough for the caller to move on meanwhile. */
class SlowWriteDriver extends MemoryDriver {
  override async write(...args: Parameters<MemoryDriver['write']>): Promise<void> {
    await new Promise((r) => setTimeout(r, 30));
    return super.write(...args);
  }
}

async function setUpSlow(): Promise<{ manager: SessionManager; driver: SlowWriteDriver; id: string }> {
  const driver = new SlowWriteDriver();
  const manager = new SessionManager(resolveSessionOptions({ driver: 'memory' }), driver, new JsonSerializer());
  const { id } = await manager.create({ data: { a: 0 }, userAgent: 'jest', ipAddress: '127.0.0.1' });
  return { manager, driver, id };
}

const IN_FLIGHT = /save\(\) of this session is still running/;

describe('SessionHandle.save() not awaited', () => {
  it('a change while the save is in flight is refused with a clear error; after it, changes are kept and committed', async () => {
    const { manager, driver, id } = await setUp();
    const h = await manager.start(facts(id), false);
    h.set('a', 1);
    const saving = h.save();
    expect(() => h.set('b', 2)).toThrow(IN_FLIGHT);
    expect(() => h.setUserId('u1')).toThrow(IN_FLIGHT);
    expect(() => h.regenerate()).toThrow(IN_FLIGHT);
    expect(() => h.invalidate()).toThrow(IN_FLIGHT);
    expect(() => h.flash('f', 1)).toThrow(IN_FLIGHT);
    await saving;
    h.set('b', 2);
    h.setUserId('u1');
    await manager.persist(h, true);
    const stored = (await driver.read(id))!;
    expect(JSON.parse(stored.payload).data).toEqual({ a: 1, b: 2 });
    expect(stored.meta.userId).toBe('u1');
  });

  it('two saves at once run one after the other, both resolve', async () => {
    const { manager, driver, id } = await setUp();
    const h = await manager.start(facts(id), false);
    h.set('a', 5);
    await Promise.all([h.save(), h.save()]);
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 5 });
    await manager.persist(h, true);
  });

  it('the commit waits for a save still in flight, and the lock is free afterwards', async () => {
    const { manager, driver, id } = await setUp();
    const h = await manager.start(facts(id), false);
    h.set('a', 9);
    void h.save();
    await manager.persist(h, true);
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 9 });
    const next = await manager.start(facts(id), false);
    expect(next.get('a')).toBe(9);
    await manager.persist(next, true);
  });
});

describe('save() where it cannot write', () => {
  it('after the commit, and on a read-only handle, it returns a rejected promise: a caller\'s .catch() gets the error', async () => {
    const { manager, id } = await setUp();
    const committed = await manager.start(facts(id), false);
    await manager.persist(committed, true);
    const readOnly = await manager.start(facts(id), true);
    for (const [h, message] of [
      [committed, /already committed/],
      [readOnly, /reads the session only/],
    ] as const) {
      let result: Promise<void> | undefined;
      expect(() => {
        result = h.save();
      }).not.toThrow();
      await expect(result).rejects.toThrow(message);
    }
  });

  it('a refused save() nobody awaits is logged, and is not an unhandled rejection (which would end the process)', async () => {
    const warnings: string[] = [];
    const host = { persist: async () => undefined, emit: () => undefined, warn: (m: string) => warnings.push(m), absoluteTimeoutMs: 60_000 };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const h = new SessionHandle(host, facts(null), true);
      void h.save(); // a handler's bare `session.save();` on a read-only route
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/save\(\) was refused: .*reads the session only/);
  });

  it('a downgrade waits for a save that starts when the one in flight settles (a guard\'s save().then(save))', async () => {
    const { manager, driver, id } = await setUpSlow();
    const h = await manager.start(facts(id), false);
    h.set('a', 1);
    const chained = h.save().then(() => {
      h.set('b', 2);
      return h.save();
    });
    await manager.downgrade(h);
    await expect(chained).resolves.toBeUndefined();
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 1, b: 2 });
  });

  it('a release without commit (a guard refused after an unawaited save, the client left) lets that save land first', async () => {
    const { manager, driver, id } = await setUpSlow();
    const h = await manager.start(facts(id), false);
    h.set('a', 3);
    const saving = h.save();
    await manager.release(h);
    await expect(saving).resolves.toBeUndefined();
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 3 });
    const next = await manager.start(facts(id), false); // the lock is free
    await manager.persist(next, true);
  });

  it('a downgrade to read-only waits for a save in flight before it lets the lock go', async () => {
    const { manager, driver, id } = await setUpSlow();
    const h = await manager.start(facts(id), false);
    h.set('a', 1);
    const saving = h.save();
    await manager.downgrade(h);
    await expect(saving).resolves.toBeUndefined(); // its fenced write still held the lock
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 1 });
    const next = await manager.start(facts(id), false); // and the lock is free
    expect(next.get('a')).toBe(1);
    await manager.persist(next, true);
  });
});

describe('life events of sessions changed before their first write', () => {
  async function eventsOf(steps: (h: import('../../lib/core/session-handle.js').SessionHandle) => void): Promise<string[]> {
    const driver = new MemoryDriver();
    const manager = new SessionManager(resolveSessionOptions({ driver: 'memory' }), driver, new JsonSerializer());
    const seen: string[] = [];
    manager.events$.subscribe((e) => seen.push(e.type));
    const h = await manager.start(facts(null), false);
    steps(h);
    await manager.persist(h, true);
    expect(await driver.read(h.getId()!)).not.toBeNull();
    return seen;
  }

  it('a new session regenerated before it was ever stored is announced as created (it replaced nothing)', async () => {
    expect(
      await eventsOf((h) => {
        h.set('cart', 1);
        h.setUserId('u2');
        h.regenerate();
      }),
    ).toEqual(['created']);
  });

  it('regenerate() then invalidate() then a change: the new session is created, after the invalidation', async () => {
    expect(
      await eventsOf((h) => {
        h.set('cart', 1);
        h.regenerate();
        h.invalidate();
        h.set('note', 'signed out');
      }),
    ).toEqual(['invalidated', 'created']);
  });
});

describe('what a request without a commit leaves behind is said, with its cause', () => {
  const warnings: string[] = [];
  beforeEach(() => {
    warnings.length = 0;
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
      warnings.push(String(message));
    });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('a downgrade to read-only drops a guard\'s unsaved change: logged, naming @SessionReadOnly()', async () => {
    const { manager, driver, id } = await setUp();
    const h = await manager.start(facts(id), false);
    h.set('fromGuard', 1);
    await manager.downgrade(h);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/were discarded: the route is @SessionReadOnly\(\)/);
    expect(JSON.parse((await driver.read(id))!.payload).data).toEqual({ a: 0 });
  });

  it('a release names why: no handler ran, or the handler\'s result was dropped', async () => {
    const { manager, id } = await setUp();
    const before = await manager.start(facts(id), false);
    before.set('x', 1);
    await manager.release(before);
    const dropped = await manager.start(facts(id), false);
    dropped.set('x', 2);
    await manager.release(dropped, 'dropped');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/before a handler ran/);
    expect(warnings[1]).toMatch(/result was dropped before it finished/);
  });

  it('a value the serializer cannot encode (a custom serializer) is a 500 that says so, not a 503 "store failed"', async () => {
    class PickySerializer extends JsonSerializer {
      override serialize(...args: Parameters<JsonSerializer['serialize']>): string {
        if ((args[0] as { data?: Record<string, unknown> }).data?.bad !== undefined) throw new Error('this format cannot encode "bad"');
        return super.serialize(...args);
      }
    }
    const driver = new MemoryDriver();
    const manager = new SessionManager(resolveSessionOptions({ driver: 'memory' }), driver, new PickySerializer());
    const { id } = await manager.create({ data: { a: 0 }, userAgent: 'jest', ipAddress: '127.0.0.1' });
    const h = await manager.start(facts(id), false);
    h.set('bad', 1);
    const failure = manager.persist(h, true);
    await expect(failure).rejects.toBeInstanceOf(SessionException);
    await expect(failure).rejects.not.toBeInstanceOf(SessionStoreUnavailableException);
    await expect(failure).rejects.toThrow(/could not be serialized.*cannot encode/);
    const next = await manager.start(facts(id), false); // the lock went
    expect(next.get('a')).toBe(0);
    await manager.persist(next, true);
  });
});
