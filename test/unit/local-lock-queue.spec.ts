import { describe, it, expect } from '@jest/globals';
import { LocalLockQueue } from '../../lib/core/local-lock-queue.js';
import { SessionLockException } from '../../lib/contracts/session-exception.js';

describe('LocalLockQueue', () => {
  it('serves waiters of one ID in arrival order, one at a time; other IDs are independent', async () => {
    const q = new LocalLockQueue();
    const order: string[] = [];
    const first = await q.acquire('a', 1000);
    const waiters = ['w1', 'w2', 'w3'].map((name) => q.acquire('a', 1000).then((release) => (order.push(name), release)));
    const other = await q.acquire('b', 10); // not blocked by 'a'
    other();
    expect(order).toEqual([]);
    first();
    const r1 = await waiters[0];
    expect(order).toEqual(['w1']);
    r1();
    r1(); // releasing twice does not skip anyone
    const r2 = await waiters[1];
    expect(order).toEqual(['w1', 'w2']);
    r2();
    (await waiters[2])();
    expect(order).toEqual(['w1', 'w2', 'w3']);
    (await q.acquire('a', 10))(); // free again
  });

  it('a waiter that times out leaves the line with SessionLockException and is never granted', async () => {
    const q = new LocalLockQueue();
    const held = await q.acquire('a', 1000);
    await expect(q.acquire('a', 50)).rejects.toBeInstanceOf(SessionLockException);
    const next = q.acquire('a', 1000);
    held();
    (await next)();
  });
});
