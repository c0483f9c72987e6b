/**
 * The driver conformance suite: one set of behaviours every `SessionDriver` must show.
 * Each driver's spec calls `describeDriverConformance` with a factory for a fresh, isolated driver.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { SessionLockException } from '../../lib/contracts/session-exception.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { makeRecord, newId, sleep } from '../support/records.js';
import { EncryptedSerializer } from '../../lib/serializers/encrypted.serializer.js';
import { randomBytes } from 'node:crypto';

export interface ConformanceTarget {
  driver: SessionDriver;
  /** Called after the suite: drop tables/dirs/keys the factory created, close connections. */
  cleanup(): Promise<void>;
}

export function describeDriverConformance(name: string, factory: () => Promise<ConformanceTarget>): void {
  describe(`SessionDriver conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let driver: SessionDriver;

    beforeAll(async () => {
      target = await factory();
      driver = target.driver;
      await driver.open();
    });
    afterAll(async () => {
      await driver.close();
      await target.cleanup();
    });

    it('round-trips payload and metadata', async () => {
      const id = newId();
      const record = makeRecord({ userId: '42' });
      await driver.write(id, record);
      const back = await driver.read(id);
      expect(back).not.toBeNull();
      expect(back!.payload).toBe(record.payload);
      expect(back!.meta).toEqual(record.meta);
      expect(back!.evictAt).toBe(record.evictAt);
    });

    it('metadata comes back exactly as the EncryptedSerializer bound it (set fields and nulls)', async () => {
      const sealer = new EncryptedSerializer([randomBytes(32)]);
      const full = makeRecord({ userId: '42' });
      const bare = makeRecord();
      bare.meta = { ...bare.meta, ipAddress: null, userAgent: null, csrfToken: null };
      // Times with a fraction of a millisecond (a timeout given as 3600 / 7 seconds): stores that
      // keep whole milliseconds must not make the record unopenable.
      const fractional = makeRecord();
      fractional.meta = { ...fractional.meta, createdAt: fractional.meta.createdAt + 0.25, lastActivity: fractional.meta.lastActivity + 0.5, expiresAt: fractional.meta.createdAt + (3600 / 7) * 1000 };
      for (const record of [full, bare, fractional]) {
        const id = newId();
        const payload = { data: { n: 1 }, flash: {} };
        await driver.write(id, { ...record, payload: sealer.serialize(payload, id, record.meta) });
        const back = (await driver.read(id))!;
        expect(sealer.deserialize(back.payload, id, back.meta)).toEqual(payload);
      }
    });

    it('replaces a record on a second write and reads absent after destroy', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'one' }));
      await driver.write(id, makeRecord({ payload: 'two' }));
      expect((await driver.read(id))!.payload).toBe('two');
      await driver.destroy(id);
      expect(await driver.read(id)).toBeNull();
      await expect(driver.destroy(id)).resolves.toBeUndefined();
    });

    it('reads an expired record as absent', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ ttlMs: 700 }));
      expect(await driver.read(id)).not.toBeNull();
      await sleep(1100);
      expect(await driver.read(id)).toBeNull();
    });

    it('gc() removes exactly the expired records and returns the count', async () => {
      const live = [newId(), newId()];
      const dead = [newId(), newId(), newId()];
      for (const id of live) await driver.write(id, makeRecord({ ttlMs: 60_000 }));
      for (const id of dead) await driver.write(id, makeRecord({ ttlMs: 200 }));
      await sleep(1100);
      const removed = await driver.gc();
      // Redis expires keys by itself (gc() returns 0); every other driver must count exactly.
      if (name.startsWith('redis')) expect(removed).toBe(0);
      else expect(removed).toBeGreaterThanOrEqual(dead.length);
      for (const id of live) expect(await driver.read(id)).not.toBeNull();
      for (const id of dead) expect(await driver.read(id)).toBeNull();
      if (!name.startsWith('redis')) expect(await driver.gc()).toBe(0);
    });

    it('a lock excludes a second holder until released', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      await expect(driver.lock(id, { waitMs: 300, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      const waiting = driver.lock(id, { waitMs: 5000, ttlMs: 10_000 });
      await sleep(100);
      await driver.unlock(id, token);
      const second = await waiting;
      expect(second).not.toBe(token);
      await driver.unlock(id, second);
    });

    it('the wait times out with SessionLockException after about waitTimeout', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      const started = Date.now();
      await expect(driver.lock(id, { waitMs: 500, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(450);
      expect(waited).toBeLessThan(3000);
      await driver.unlock(id, token);
    });

    it('a lock whose holder died is taken over after ttl', async () => {
      const id = newId();
      await driver.lock(id, { waitMs: 1000, ttlMs: 600 }); // never released: the holder "died"
      const started = Date.now();
      const token = await driver.lock(id, { waitMs: 5000, ttlMs: 10_000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      await driver.unlock(id, token);
    });

    it('unlock by a non-owner does nothing', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.unlock(id, 'not-the-owner-token');
      await expect(driver.lock(id, { waitMs: 200, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, token);
      const again = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.unlock(id, again);
    });

    it('a holder whose lock expired and was taken over cannot overwrite the new holder', async () => {
      const id = newId();
      const stale = await driver.lock(id, { waitMs: 1000, ttlMs: 300 });
      const fresh = await driver.lock(id, { waitMs: 5000, ttlMs: 10_000 });
      await driver.write(id, makeRecord({ payload: 'new-holder' }), fresh);
      await expect(driver.write(id, makeRecord({ payload: 'stale-holder' }), stale)).rejects.toBeInstanceOf(SessionLockException);
      if (driver.writeAndUnlock) {
        await expect(driver.writeAndUnlock(id, makeRecord({ payload: 'stale-holder' }), stale)).rejects.toBeInstanceOf(SessionLockException);
      }
      expect((await driver.read(id))!.payload).toBe('new-holder');
      // The stale holder's unlock must not free the new holder's lock.
      await driver.unlock(id, stale);
      await expect(driver.lock(id, { waitMs: 200, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, fresh);
    });

    it('destroy voids a held lock: its holder cannot bring the session back', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'live' }));
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      await driver.destroy(id); // e.g. "sign out everywhere" from another request
      await expect(driver.write(id, makeRecord({ payload: 'resurrected' }), token)).rejects.toBeInstanceOf(SessionLockException);
      expect(await driver.read(id)).toBeNull();
      // The lock is free for the next request at once.
      const next = await driver.lock(id, { waitMs: 200, ttlMs: 10_000 });
      await driver.unlock(id, next);
    });

    it('destroyByUser voids the locks of the sessions it destroys', async () => {
      const user = 'locked-' + newId().slice(-8);
      const id = newId();
      await driver.write(id, makeRecord({ userId: user }));
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(await driver.destroyByUser(user)).toBe(1);
      await expect(driver.write(id, makeRecord({ userId: user }), token)).rejects.toBeInstanceOf(SessionLockException);
      expect(await driver.read(id)).toBeNull();
    });

    it('extend (when offered) keeps a lock alive past its ttl, for its owner only', async () => {
      if (!driver.extend) return expect(driver.extend).toBeUndefined();
      const id = newId();
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 400 });
      expect(await driver.extend(id, 'not-the-owner', 5000)).toBe(false);
      expect(await driver.extend(id, token, 5000)).toBe(true);
      await sleep(700); // past the original ttl
      await expect(driver.lock(id, { waitMs: 100, ttlMs: 1000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.write(id, makeRecord({ payload: 'still mine' }), token);
      await driver.unlock(id, token);
      expect(await driver.extend(id, token, 5000)).toBe(false);
    });

    it('lockAndRead / writeAndUnlock (when offered) behave like their two-step forms', async () => {
      if (!driver.lockAndRead || !driver.writeAndUnlock) {
        expect(driver.lockAndRead).toBeUndefined();
        expect(driver.writeAndUnlock).toBeUndefined();
        return;
      }
      const id = newId();
      const first = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(first.record).toBeNull();
      await driver.writeAndUnlock(id, makeRecord({ payload: 'p1' }), first.token);
      const second = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(second.record!.payload).toBe('p1');
      await expect(driver.lock(id, { waitMs: 200, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.writeAndUnlock(id, makeRecord({ payload: 'p2' }), second.token);
      const t = await driver.lock(id, { waitMs: 200, ttlMs: 10_000 });
      await driver.unlock(id, t);
      expect((await driver.read(id))!.payload).toBe('p2');
    });

    it('a malformed ID never reaches storage', async () => {
      const bad = ['../../etc/passwd', 'ml_sess_short', 'ml_sess_' + 'a'.repeat(42) + '/', '', 'ml_sess_' + 'é'.repeat(43)];
      for (const id of bad) {
        await expect(driver.read(id)).rejects.toThrow();
        await expect(driver.write(id, makeRecord())).rejects.toThrow();
        await expect(driver.destroy(id)).rejects.toThrow();
        await expect(driver.lock(id, { waitMs: 10, ttlMs: 1000 })).rejects.toThrow();
      }
    });

    it('listByUser and destroyByUser touch exactly that user', async () => {
      const user = 'user-' + newId().slice(-10);
      const other = 'other-' + newId().slice(-10);
      const mine = [newId(), newId(), newId()];
      const theirs = [newId()];
      for (const id of mine) await driver.write(id, makeRecord({ userId: user }));
      for (const id of theirs) await driver.write(id, makeRecord({ userId: other }));
      const listed = await driver.listByUser(user);
      expect(listed.map((s) => s.id).sort()).toEqual([...mine].sort());
      expect(listed[0].meta.userId).toBe(user);
      const removed = await driver.destroyByUser(user, mine[0]);
      expect(removed).toBe(2);
      expect(await driver.read(mine[0])).not.toBeNull();
      expect(await driver.read(mine[1])).toBeNull();
      expect(await driver.read(mine[2])).toBeNull();
      expect((await driver.listByUser(user)).map((s) => s.id)).toEqual([mine[0]]);
      expect(await driver.read(theirs[0])).not.toBeNull();
      expect(await driver.destroyByUser(user)).toBe(1);
      expect(await driver.listByUser(user)).toEqual([]);
      // A user who logs in again on another session moves index entries; a numeric-looking ID is just a string.
      const numeric = newId();
      await driver.write(numeric, makeRecord({ userId: '12345' }));
      expect((await driver.listByUser('12345')).map((s) => s.id)).toEqual([numeric]);
      await driver.write(numeric, makeRecord({ userId: '67890' }));
      expect(await driver.listByUser('12345')).toEqual([]);
      expect((await driver.listByUser('67890')).map((s) => s.id)).toEqual([numeric]);
    });
  });
}
