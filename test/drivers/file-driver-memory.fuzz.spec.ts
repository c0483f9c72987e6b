import { describe, it, expect, jest, afterAll } from '@jest/globals';
import { fstatSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDriver } from '../../lib/drivers/file.driver.js';
import { SessionLockException } from '../../lib/contracts/session-exception.js';
import { makeRecord, newId, sleep } from '../support/records.js';

/**
 * What a FileDriver instance remembers of its last commits (the record, the spare, the free name
 * it released the lease to, and two open descriptors per session) must never let it read a stale
 * record or write through a descriptor into the wrong file. Random operations of three instances
 * (as three processes) on three sessions, checked after every step against a model and against
 * the instances' bookkeeping: every memory that the file system still vouches for (its free name
 * is there) must hold descriptors of exactly the record and the spare, and the process must hold
 * no descriptor beyond those.
 */

interface RecentView {
  spareFd: number | null;
  recordFd: number | null;
  free: string | null;
  spare: string;
}
interface Internals {
  recent: Map<string, RecentView>;
  fdHolders: Map<string, unknown>;
  recentFds: number;
  openSpares: Map<string, unknown>;
}
const internals = (d: FileDriver): Internals => d as unknown as Internals;
const opts = { waitMs: 500, ttlMs: 10_000 };
const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function checkMemory(drivers: FileDriver[], root: string, base: number): Promise<void> {
  let total = 0;
  for (const d of drivers) {
    const x = internals(d);
    let held = 0;
    for (const [key, entry] of x.recent) {
      const n = (entry.spareFd === null ? 0 : 1) + (entry.recordFd === null ? 0 : 1);
      held += n;
      expect(x.fdHolders.has(key)).toBe(n > 0);
      if (entry.free === null) continue;
      const names = await readdir(join(root, `${key}.lease`)).catch(() => [] as string[]);
      if (!names.includes(entry.free)) continue;
      // The file system still vouches for this memory: its descriptors must reach those files.
      if (entry.recordFd !== null) expect(fstatSync(entry.recordFd).ino).toBe((await stat(join(root, `${key}.json`))).ino);
      if (entry.spareFd !== null) expect(fstatSync(entry.spareFd).ino).toBe((await stat(join(root, `${key}.lease`, entry.free, entry.spare))).ino);
    }
    expect(x.recentFds).toBe(held);
    expect(x.openSpares.size).toBe(0);
    total += held;
  }
  // Closes are asynchronous: wait until they are done, then count.
  for (let i = 0; i < 100 && (await openFds()) - base !== total; i++) await sleep(5);
  expect((await openFds()) - base).toBe(total);
}

describe.each([1, 7])('FileDriver memory of its commits, random operations (seed %i)', (seed) => {
  it('keeps reads exact and descriptors on the right files, without leaks', async () => {
    let state = seed;
    const rnd = (n: number): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state % n;
    };
    const parent = await mkdtemp(join(tmpdir(), 'ml-file-fuzz-'));
    dirs.push(parent);
    const root = join(parent, 's');
    await sleep(50);
    const base = await openFds();
    const drivers = [0, 1, 2].map(() => new FileDriver({ path: root }));
    const ids = [newId(), newId(), newId()];
    const model = new Map<string, string | null>(ids.map((i) => [i, null]));
    const expectRead = (payload: string | undefined, id: string): void => expect(payload ?? null).toBe(model.get(id));
    let n = 0;
    for (let step = 0; step < 300; step++) {
      const di = rnd(3);
      const d = drivers[di];
      const id = ids[rnd(ids.length)];
      const p = `p${++n}`;
      const op = rnd(10);
      if (op <= 2) {
        // The request cycle: lockAndRead + writeAndUnlock.
        const { token, record } = await d.lockAndRead!(id, opts);
        expectRead(record?.payload, id);
        await d.writeAndUnlock!(id, makeRecord({ payload: p }), token);
        model.set(id, p);
      } else if (op === 3) {
        // Locked and read, released without a write.
        const { token, record } = await d.lockAndRead!(id, opts);
        expectRead(record?.payload, id);
        await d.unlock(id, token);
      } else if (op === 4) {
        await d.unlock(id, await lockAndWrite(d, id, p));
        model.set(id, p);
      } else if (op === 5) {
        // Several writes under one lock (session.save() during a request, then the commit).
        const { token, record } = await d.lockAndRead!(id, opts);
        expectRead(record?.payload, id);
        await d.write(id, makeRecord({ payload: `${p}a` }), token);
        await d.write(id, makeRecord({ payload: `${p}bb` }), token);
        await d.writeAndUnlock!(id, makeRecord({ payload: p }), token);
        model.set(id, p);
      } else if (op === 6) {
        if (rnd(3) === 0) {
          await d.destroy(id);
          model.set(id, null);
        } else {
          await d.write(id, makeRecord({ payload: p })); // without the lock
          model.set(id, p);
        }
      } else if (op === 7) {
        // A holder whose lease runs out, taken over by any instance (its own included).
        const slow = await d.lockAndRead!(id, { waitMs: 500, ttlMs: 30 });
        expectRead(slow.record?.payload, id);
        await sleep(40);
        const e = drivers[rnd(3)];
        const { token, record } = await e.lockAndRead!(id, opts);
        expectRead(record?.payload, id);
        if (rnd(2) === 0) {
          await e.writeAndUnlock!(id, makeRecord({ payload: p }), token);
          model.set(id, p);
        } else {
          await e.unlock(id, token);
        }
        await expect(d.writeAndUnlock!(id, makeRecord({ payload: 'late' }), slow.token)).rejects.toBeInstanceOf(SessionLockException);
        await d.unlock(id, slow.token);
      } else if (op === 8) {
        // The lease runs out between the link and the rename: the write is refused.
        const { token, record } = await d.lockAndRead!(id, opts);
        expectRead(record?.payload, id);
        const realNow = Date.now.bind(Date);
        let calls = 0;
        const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + (++calls > 1 ? 3_600_000 : 0));
        try {
          await expect(d.write(id, makeRecord({ payload: `refused ${p}` }), token)).rejects.toBeInstanceOf(SessionLockException);
        } finally {
          spy.mockRestore();
        }
        if (rnd(2) === 0) {
          await d.unlock(id, token);
        } else {
          await d.writeAndUnlock!(id, makeRecord({ payload: p }), token);
          model.set(id, p);
        }
      } else {
        if (rnd(2) === 0) await d.gc();
        expectRead((await d.read(id))?.payload, id);
      }
      for (const i of ids) expectRead((await drivers[(di + 1) % 3].read(i))?.payload, i);
      await checkMemory(drivers, root, base);
    }
    for (const d of drivers) await d.close();
    await checkMemory([], root, base);
  }, 60_000);
});

async function lockAndWrite(d: FileDriver, id: string, payload: string): Promise<string> {
  const token = await d.lock(id, opts);
  await d.write(id, makeRecord({ payload }), token);
  return token;
}
