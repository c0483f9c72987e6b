import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

describe.each(PLATFORMS)('session data and flash (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform);
  });
  afterAll(() => t.close());

  it('stores data across requests with dot notation', async () => {
    const b = t.browser();
    const first = await b.post('/s/set', { 'user.profile.name': 'Ada', 'user.role': 'admin' });
    expect(first.status).toBe(201);
    expect(b.sessionId).toMatch(/^ml_sess_[A-Za-z0-9_-]{43}$/);
    expect(first.body.id).toBe(b.sessionId);
    const read = await b.get('/s/get');
    expect(read.body.data).toEqual({ user: { profile: { name: 'Ada' }, role: 'admin' } });
    expect(read.headers['set-cookie']).toBeUndefined();
  });

  it('flash: readable in the flashing request and the next one, gone in the one after', async () => {
    const b = t.browser();
    const n = await b.post('/s/flash', { key: 'status', value: 'Profile updated!' });
    expect(n.body.sameRequest).toBe('Profile updated!');
    expect((await b.get('/s/flash/status')).body.value).toBe('Profile updated!');
    expect((await b.get('/s/flash/status')).body.value).toBeNull();
  });

  it('reflash() keeps all current flash data one more request', async () => {
    const b = t.browser();
    await b.post('/s/flash-many', { a: 1, b: 2 }); // N
    await b.post('/s/reflash'); // N+1: both readable, both kept
    expect((await b.get('/s/flashes?keys=a,b')).body).toEqual({ a: 1, b: 2 }); // N+2
    expect((await b.get('/s/flashes?keys=a,b')).body).toEqual({ a: null, b: null }); // N+3
  });

  it('without reflash() the same flash data is gone one request earlier', async () => {
    const b = t.browser();
    await b.post('/s/flash-many', { a: 1 }); // N
    await b.post('/s/set', { other: true }); // N+1
    expect((await b.get('/s/flash/a')).body.value).toBeNull(); // N+2
  });

  it('keep(key) keeps only that key one more request', async () => {
    const b = t.browser();
    await b.post('/s/flash-many', { x: 'X', y: 'Y' }); // N
    expect((await b.post('/s/keep/x')).body.value).toBe('X'); // N+1
    expect((await b.get('/s/flash/y')).body.value).toBeNull(); // N+2: y is gone
    // N+2 above read y, and x is still readable there too; now x is gone.
    expect((await b.get('/s/flash/x')).body.value).toBeNull();
  });

  it('keep(key) leaves the kept key readable in the request after', async () => {
    const b = t.browser();
    await b.post('/s/flash-many', { x: 'X', y: 'Y' }); // N
    await b.post('/s/keep/x'); // N+1
    expect((await b.get('/s/flash/x')).body.value).toBe('X'); // N+2
  });

  it('now() lasts for the current request only', async () => {
    const b = t.browser();
    await b.post('/s/set', { any: 1 });
    const res = await b.post('/s/now', { key: 'n', value: 'only now' });
    expect(res.body.sameRequest).toBe('only now');
    expect((await b.get('/s/flash/n')).body.value).toBeNull();
  });

  it('a request that never touches the session sets no cookie and stores nothing', async () => {
    const b = t.browser();
    const res = await b.get('/s/untouched');
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    const read = await b.get('/s/get');
    expect(read.body.id).toBeNull();
    expect(read.headers['set-cookie']).toBeUndefined();
  });

  it('a handler that throws after set(): the change and the flash are saved', async () => {
    const b = t.browser();
    await b.post('/s/set', { before: 1 });
    const res = await b.post('/s/throw');
    expect(res.status).toBe(400);
    const read = await b.get('/s/get');
    expect(read.body.data.thrown).toBe(true);
    expect((await b.get('/s/flash/error')).body.value).toBeNull(); // shown during the GET above
  });
});
