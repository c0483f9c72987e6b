import { describe, it, expect } from '@jest/globals';
import { LocalLockQueue } from '../../lib/core/local-lock-queue.js';
import { SessionLockException } from '../../lib/contracts/session-exception.js';

describe('LocalLockQueue', () => {
  it('serves waiters of one ID in arrival order, one at a time; other IDs are independent', async () => {
    const q = new LocalLockQueue<string>();
    const order: string[] = [];
    const first = await q.acquire('a', 1000);
    const waiters = ['w1', 'w2', 'w3'].map((name) => q.acquire('a', 1000).then((turn) => (order.push(name), turn)));
    const other = await q.acquire('b', 10); // not blocked by 'a'
    other.release();
    expect(order).toEqual([]);
    first.release();
    const r1 = await waiters[0];
    expect(order).toEqual(['w1']);
    r1.release();
    r1.release(); // releasing twice does not skip anyone
    const r2 = await waiters[1];
    expect(order).toEqual(['w1', 'w2']);
    r2.release();
    (await waiters[2]).release();
    expect(order).toEqual(['w1', 'w2', 'w3']);
    (await q.acquire('a', 10)).release(); // free again
  });

  it('tryAcquire grants a free ID at once and refuses a held one without joining the line', async () => {
    const q = new LocalLockQueue<string>();
    const first = q.tryAcquire('a');
    expect(first).not.toBeNull();
    expect(q.tryAcquire('a')).toBeNull();
    expect(q.hasWaiter('a')).toBe(false); // the refusal did not queue anything
    const waiter = q.acquire('a', 1000);
    expect(q.hasWaiter('a')).toBe(true);
    first!.release();
    const second = await waiter;
    expect(q.tryAcquire('a')).toBeNull(); // still held, by the waiter now
    second.release();
    q.tryAcquire('a')!.release(); // free again
  });

  it('a waiter that times out leaves the line with SessionLockException and is never granted', async () => {
    const q = new LocalLockQueue<string>();
    const held = await q.acquire('a', 1000);
    await expect(q.acquire('a', 50)).rejects.toBeInstanceOf(SessionLockException);
    const next = q.acquire('a', 1000);
    held.release();
    (await next).release();
  });

  it('hands a baton (the store lock) to the next waiter; a plain turn carries none', async () => {
    const q = new LocalLockQueue<string>();
    const first = await q.acquire('a', 1000);
    expect(first.baton).toBeUndefined();
    expect(q.hasWaiter('a')).toBe(false);
    const second = q.acquire('a', 1000);
    const third = q.acquire('a', 1000);
    expect(q.hasWaiter('a')).toBe(true);
    expect(first.release('lock-1')).toBe(true);
    const t2 = await second;
    expect(t2.baton).toBe('lock-1');
    t2.release(); // no baton: the third waiter takes its own lock
    const t3 = await third;
    expect(t3.baton).toBeUndefined();
    t3.release();
    expect(q.hasWaiter('a')).toBe(false);
  });

  it('with nobody waiting, a baton is refused (the holder must release the store lock itself) and the turn stays held until a plain release', async () => {
    const q = new LocalLockQueue<string>();
    const first = await q.acquire('a', 1000);
    const timedOut = q.acquire('a', 20);
    await expect(timedOut).rejects.toBeInstanceOf(SessionLockException);
    expect(first.release('lock-1')).toBe(false);
    let granted = false;
    const next = q.acquire('a', 1000).then((turn) => ((granted = true), turn));
    await new Promise((r) => setTimeout(r, 20));
    expect(granted).toBe(false); // still held: the refused hand-over did not end the turn
    expect(first.release()).toBe(true);
    const t = await next;
    expect(t.baton).toBeUndefined();
    t.release();
  });
});
