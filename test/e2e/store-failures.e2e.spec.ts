import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

/** A real MemoryDriver whose store can be switched "down" and whose records can be corrupted. */
class FlakyDriver extends MemoryDriver {
  down = false;
  override async read(id: string): Promise<SessionRecord | null> {
    if (this.down) throw new Error('ECONNREFUSED 127.0.0.1:6379');
    return super.read(id);
  }
  override async lock(id: string, o: { waitMs: number; ttlMs: number }): Promise<string> {
    if (this.down) throw new Error('ECONNREFUSED 127.0.0.1:6379');
    return super.lock(id, o);
  }
  override async write(id: string, r: SessionRecord, token?: string): Promise<void> {
    if (this.down) throw new Error('ECONNREFUSED 127.0.0.1:6379');
    return super.write(id, r, token);
  }
  async corrupt(id: string, payload: string): Promise<void> {
    const r = (await super.read(id))!;
    await super.write(id, { ...r, payload });
  }
}

describe.each(PLATFORMS)('store failures and bad stored data (%s)', (platform) => {
  let t: TestApp;
  const driver = new FlakyDriver();
  beforeAll(async () => {
    t = await createTestApp(platform, { driver, maxPayloadBytes: 1024 });
  });
  afterAll(() => t.close());

  it('a store that is down → 503, and the live session is not overwritten', async () => {
    const b = t.browser();
    await b.post('/s/set', { precious: 'data' });
    driver.down = true;
    try {
      const res = await b.post('/s/set', { precious: 'lost?' });
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/store is unavailable/);
      expect(b.lastSetCookie).toHaveLength(0);
    } finally {
      driver.down = false;
    }
    expect((await b.get('/s/get')).body.data).toEqual({ precious: 'data' });
  });

  it.each([
    ['not JSON', '{{{'],
    ['JSON of the wrong shape', '[1,2,3]'],
    ['a payload with a bad flash table', '{"data":{},"flash":{"x":5}}'],
  ])('corrupt stored data (%s) → a fresh session, not an error', async (_label, payload) => {
    const b = t.browser();
    await b.post('/s/set', { a: 1 });
    const oldId = b.sessionId!;
    await driver.corrupt(oldId, payload);
    const res = await b.get('/s/get');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({});
    expect(await driver.read(oldId)).toBeNull(); // removed while locked, so it can't come back
  });

  it('a payload over maxPayloadBytes fails with a clear error and leaves the stored session unchanged', async () => {
    const b = t.browser();
    await b.post('/s/set', { small: 1 });
    const res = await b.post('/s/set', { big: 'x'.repeat(5000) });
    expect(res.status).toBe(500);
    expect(res.body.message).toMatch(/over maxPayloadBytes \(1024\)/);
    const after = await b.get('/s/get');
    expect(after.body.data).toEqual({ small: 1 });
  });
});
