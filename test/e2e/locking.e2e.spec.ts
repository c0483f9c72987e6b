import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import request from 'supertest';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

describe.each(PLATFORMS)('per-session locking (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, { lock: { waitTimeout: 10, ttl: 30 } });
  });
  afterAll(() => t.close());

  it('50 concurrent read-modify-write requests on one session: the counter is exactly 50', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    const results = await Promise.all(Array.from({ length: 50 }, () => b.post('/s/increment')));
    expect(results.every((r) => r.status === 201)).toBe(true);
    // Serialized: every request saw its predecessor's write, so the values are exactly 1..50.
    expect(results.map((r) => r.body.counter as number).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await b.get('/s/get')).body.data.counter).toBe(50);
  });

  it('@SessionReadOnly() requests on one session run in parallel, without the lock', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 7 });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, () => b.get('/s/slow-read?ms=300')));
    const elapsed = Date.now() - started;
    expect(results.every((r) => r.status === 200 && r.body.counter === 7 && r.body.readOnly === true)).toBe(true);
    // Serialized they would need 10 × 300 ms; in parallel about 300 ms.
    expect(elapsed).toBeLessThan(1500);
    expect(results.every((r) => r.headers['set-cookie'] === undefined)).toBe(true);
  });

  it('a read-only route still deletes the cookie of a dead session (fingerprint mismatch)', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 5 });
    b.headers['user-agent'] = 'another-browser/2.0';
    const res = await b.get('/s/slow-read?ms=0');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ counter: 0, readOnly: true });
    expect(b.lastSetCookie.join()).toMatch(/ML_SESS=; .*Max-Age=0/);
    expect(b.cookie).toBeNull();
  });

  it('a read-only route that fails still carries its commit headers, and changes nothing', async () => {
    const s = await createTestApp(platform, { noStore: true });
    try {
      const b = s.browser();
      await b.post('/s/set', { counter: 2 });
      const res = await b.get('/s/readonly-throw');
      expect(res.status).toBe(409);
      expect(res.headers['cache-control']).toBe('no-store');
      expect((await b.get('/s/slow-read?ms=0')).headers['cache-control']).toBe('no-store');
      expect((await b.get('/s/get')).body.data).toEqual({ counter: 2 });
    } finally {
      await s.close();
    }
  });

  it('noStore overrides a Cache-Control the handler set, on read-only routes as on locking ones', async () => {
    const s = await createTestApp(platform, { noStore: true });
    try {
      const b = s.browser();
      await b.post('/s/set', { counter: 1 });
      expect((await b.get('/s/cache-write')).headers['cache-control']).toBe('no-store');
      expect((await b.get('/s/cache-read')).headers['cache-control']).toBe('no-store');
    } finally {
      await s.close();
    }
    // Without noStore the handler's header stays (and a read-only route has nothing to commit).
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    expect((await b.get('/s/cache-read')).headers['cache-control']).toBe('public, max-age=600');
  });

  it('a read-only request does not wait for a locked session', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 3 });
    const holding = b.get('/s/hold?ms=800');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const read = await b.get('/s/slow-read?ms=0');
    expect(read.body.counter).toBe(3);
    expect(Date.now() - started).toBeLessThan(1000); // vs a 10 s lock wait if it were still held
    await holding;
  });

  it('changing the session on a read-only route is a clear error', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    const res = await b.post('/s/readonly-write');
    expect(res.status).toBe(500);
    expect(res.body.message).toMatch(/reads the session only/);
    expect((await b.get('/s/get')).body.data.nope).toBeUndefined();
  });

  it('a handler that throws releases the lock: the next request is not delayed', async () => {
    const b = t.browser();
    await b.post('/s/set', { x: 1 });
    expect((await b.post('/s/throw')).status).toBe(400);
    const started = Date.now();
    const next = await b.get('/s/get');
    expect(Date.now() - started).toBeLessThan(1000); // vs a 10 s lock wait if it were still held
    expect(next.body.data.thrown).toBe(true);
  });

  it('a guard that rejects releases the lock (and its route never wrote)', async () => {
    const b = t.browser();
    await b.post('/s/set', { x: 1 });
    expect((await b.post('/s/guarded')).status).toBe(403);
    const started = Date.now();
    const next = await b.get('/s/get');
    expect(Date.now() - started).toBeLessThan(1000); // vs a 10 s lock wait if it were still held
    expect(next.body.data.never).toBeUndefined();
  });

  it('a 404 releases the lock', async () => {
    const b = t.browser();
    await b.post('/s/set', { x: 1 });
    expect((await b.get('/does-not-exist')).status).toBe(404);
    const started = Date.now();
    expect((await b.get('/s/get')).body.data.x).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000); // vs a 10 s lock wait if it were still held
  });

  it('a client that gives up while waiting for the lock (on a route that never reaches a handler) does not leave it held', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 9 });
    const holding = b.get('/s/hold?ms=400');
    await new Promise((r) => setTimeout(r, 50));
    await request(t.server as never).get('/no-such-route').set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0' }).timeout(100).catch(() => undefined);
    await holding;
    const started = Date.now();
    expect((await b.get('/s/get')).body.data.counter).toBe(9);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('a client that aborts does not leave the lock held', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 5 });
    // Abort a request while its handler runs; the handler finishes and commits, releasing the lock.
    await request(t.server as never).get('/s/hold?ms=300').set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0' }).timeout(50).catch(() => undefined);
    const started = Date.now();
    const next = await b.get('/s/get');
    expect(next.body.data.counter).toBe(5);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe.each(PLATFORMS)('lock wait timeout (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, { lock: { waitTimeout: 0.3, ttl: 30 } });
  });
  afterAll(() => t.close());

  it('answers 423 Locked with Retry-After when the lock is not free in time, and emits lock-timeout', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    const holding = b.get('/s/hold?ms=1200');
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    const blocked = await b.get('/s/get');
    expect(blocked.status).toBe(423);
    expect(blocked.headers['retry-after']).toBe('1');
    expect(blocked.body.message).toMatch(/locked by another request/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await holding).status).toBe(200);
    expect((await b.get('/s/get')).status).toBe(200);
  });
});

describe.each(PLATFORMS)('lock renewal for slow requests (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, { lock: { waitTimeout: 10, ttl: 0.3 } });
  });
  afterAll(() => t.close());

  it('a handler slower than lock.ttl keeps its lock: the next request waits, nothing is lost', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 0 });
    const first = b.post('/s/slow-increment?ms=1000');
    await new Promise((r) => setTimeout(r, 100));
    const second = b.post('/s/slow-increment?ms=10');
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1.status).toBe(201);
    expect(r2.status).toBe(201);
    expect([r1.body.counter, r2.body.counter]).toEqual([1, 2]);
    expect((await b.get('/s/get')).body.data.counter).toBe(2);
  });
});
