/** ASVS 3.1.1 (no ID in URLs), 3.2.1 (new ID on sign-in), 3.2.3 (cookie storage), 3.3.1 (sign-out invalidates), 5.1.3 (input validation of IDs), 7.1.1 (no raw IDs in events); the OWASP Session Management Cheat Sheet (fixation, renewal). */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import request from 'supertest';
import { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { SessionManager } from '../../lib/core/session-manager.js';
import type { SessionEvent } from '../../lib/contracts/session-event.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { newId, sleep } from '../support/records.js';

describe.each(PLATFORMS)('session identity (%s)', (platform) => {
  let t: TestApp;
  let driver: SessionDriver;
  const events: SessionEvent[] = [];
  beforeAll(async () => {
    t = await createTestApp(platform);
    driver = t.app.get<SessionDriver>(SessionDriver);
    t.app.get(SessionManager).events$.subscribe((e) => events.push(e));
  });
  afterAll(() => t.close());

  it('ASVS 3.2.1 / OWASP Session Fixation: regenerate(): new ID, same data, new CSRF token, and the old ID no longer loads', async () => {
    const b = t.browser();
    await b.post('/s/set', { cart: ['apple'] });
    const tokenBefore = (await b.get('/s/csrf')).body.token as string;
    const oldId = b.sessionId!;
    const res = await b.post('/s/regenerate');
    expect(res.body.before).toBe(oldId);
    expect(res.body.after).not.toBe(oldId);
    expect(b.sessionId).toBe(res.body.after);
    expect((await b.get('/s/get')).body.data).toEqual({ cart: ['apple'] });
    expect((await b.get('/s/csrf')).body.token).not.toBe(tokenBefore);
    expect(await driver.read(oldId)).toBeNull();
    // A browser still holding the old cookie gets a fresh, empty session.
    const stale = t.browser();
    stale.cookie = `ML_SESS=${oldId}`;
    const staleRead = await stale.get('/s/get');
    expect(staleRead.body.id).toBeNull();
    expect(staleRead.body.data).toEqual({});
    expect(events.some((e) => e.type === 'regenerated')).toBe(true);
  });

  it('regenerate(false) keeps the old record loadable', async () => {
    const b = t.browser();
    await b.post('/s/set', { k: 'v' });
    const oldId = b.sessionId!;
    await b.post('/s/regenerate?keep=1');
    expect(b.sessionId).not.toBe(oldId);
    expect(await driver.read(oldId)).not.toBeNull();
  });

  it('ASVS 3.3.1 logout: invalidate(): data gone, the old ID no longer loads, the cookie is replaced', async () => {
    const b = t.browser();
    await b.post('/s/set', { secret: 'x' });
    const oldId = b.sessionId!;
    const res = await b.post('/s/invalidate');
    expect(res.body.id).not.toBe(oldId);
    // Nothing was put into the new session, so the cookie is deleted rather than replaced by an empty session.
    expect(b.lastSetCookie.join()).toMatch(/ML_SESS=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970/);
    expect(b.cookie).toBeNull();
    expect(await driver.read(oldId)).toBeNull();
    expect((await b.get('/s/get')).body.data).toEqual({});
    expect(events.some((e) => e.type === 'invalidated')).toBe(true);
  });

  it('ASVS 3.3.1 logout: invalidate() then flash: the cookie is replaced by the new session', async () => {
    const b = t.browser();
    await b.post('/s/set', { secret: 'x' });
    const oldId = b.sessionId!;
    const res = await b.post('/s/logout');
    expect(b.sessionId).toBe(res.body.id);
    expect(b.sessionId).not.toBe(oldId);
    expect(await driver.read(oldId)).toBeNull();
    const after = await b.get('/s/get');
    expect(after.body.data).toEqual({});
    expect((await b.get('/s/flash/status')).body.value).toBeNull(); // shown once during the GET above
  });

  it('ASVS 3.2.1 regenerate on login: regenerate + setUserId, listed by user, destroyed by user', async () => {
    const user = 'u-' + Date.now();
    const phone = t.browser();
    const laptop = t.browser();
    await phone.post('/s/set', { pre: 1 });
    const preLogin = phone.sessionId!;
    await phone.post('/s/login', { userId: user });
    expect(phone.sessionId).not.toBe(preLogin);
    await laptop.post('/s/login', { userId: user });
    const manager = t.app.get(SessionManager);
    const listed = await manager.listByUser(user);
    expect(listed.map((s) => s.id).sort()).toEqual([phone.sessionId, laptop.sessionId].sort());
    expect(listed[0].ref).toMatch(/^[0-9a-f]{12}$/);
    expect(await manager.destroyByUser(user, { except: laptop.sessionId })).toBe(1);
    expect((await phone.get('/s/get')).body.userId).toBeNull();
    expect((await laptop.get('/s/get')).body.userId).toBe(user);
  });

  it('listByUser shows live sessions only: an idle- or absolute-expired one still kept by the store is left out', async () => {
    const user = 'u-dead-' + Date.now();
    const manager = t.app.get(SessionManager);
    const { id: live } = await manager.create({ userId: user });
    const { id: idle } = await manager.create({ userId: user });
    const { id: over } = await manager.create({ userId: user });
    const now = Date.now();
    // The store keeps dead records a while (so a request can tell "expired" from "unknown").
    const idleRecord = (await driver.read(idle))!;
    await driver.write(idle, { ...idleRecord, meta: { ...idleRecord.meta, lastActivity: now - 3 * 86_400_000 } });
    const overRecord = (await driver.read(over))!;
    await driver.write(over, { ...overRecord, meta: { ...overRecord.meta, expiresAt: now - 1000 } });
    expect((await manager.listByUser(user)).map((s) => s.id)).toEqual([live]);
  });

  it('OWASP Session Mgmt strict mode: an unknown well-formed ID is never adopted and nothing is stored under it', async () => {
    const forged = newId();
    const b = t.browser();
    b.cookie = `ML_SESS=${forged}`;
    const res = await b.post('/s/set', { x: 1 });
    expect(res.status).toBe(201);
    expect(b.sessionId).not.toBe(forged);
    expect(b.sessionId).toMatch(/^ml_sess_[A-Za-z0-9_-]{43}$/);
    expect(await driver.read(forged)).toBeNull();
  });

  it('an unknown ID on a request that stores nothing gets no Set-Cookie at all', async () => {
    const b = t.browser();
    b.cookie = `ML_SESS=${newId()}`;
    const res = await b.get('/s/get');
    expect(res.body.id).toBeNull();
    expect(b.lastSetCookie).toEqual([]);
  });

  it('a request waiting on the lock while another signs in does not delete the new session cookie', async () => {
    const b = t.browser();
    await b.post('/s/set', { pre: 1 });
    const oldCookie = b.cookie!;
    // A slow request holds the lock; the login and a poll queue behind it in that order.
    const slow = b.get('/s/hold?ms=300');
    await sleep(50);
    const login = b.post('/s/login', { userId: 'racer' });
    await sleep(50);
    const poll = request(t.server as never).get('/s/get').set({ Cookie: oldCookie, 'user-agent': 'jest-browser/1.0' });
    const [, loginRes, pollRes] = await Promise.all([slow, login, poll]);
    expect(String(loginRes.headers['set-cookie'])).toMatch(/ML_SESS=ml_sess_/);
    // The poll found the old ID gone (regenerated): it must not touch the browser's cookie.
    expect(pollRes.headers['set-cookie']).toBeUndefined();
    expect((await b.get('/s/get')).body.userId).toBe('racer');
  });

  it.each([
    ['wrong prefix', 'ML_SESS=xx_sess_' + 'a'.repeat(43)],
    ['too long', 'ML_SESS=ml_sess_' + 'a'.repeat(5000)],
    ['non-ASCII', 'ML_SESS=ml_sess_' + 'é'.repeat(43)],
    ['the name twice', 'ML_SESS=a; ML_SESS=b'],
    ['empty value', 'ML_SESS='],
    ['no "="', 'ML_SESS'],
    ['garbage', ';;;==;=;'],
    ['a 9 KiB cookie jar without a session', 'x=' + 'y'.repeat(9000)],
    ['a header over 16 KiB', 'x=' + 'y'.repeat(15000)],
  ])('ASVS 5.1.3 input validation: malformed cookie (%s) → a fresh session, never a 5xx', async (_label, header) => {
    const res = await request(t.server as never).post('/s/set').set('Cookie', header).set('user-agent', 'ua').send({ ok: true });
    expect(res.status).toBe(201);
    const setCookie = ([] as string[]).concat((res.headers['set-cookie'] as unknown as string[]) ?? []);
    const issued = setCookie.find((c) => c.startsWith('ML_SESS=ml_sess_'));
    expect(issued).toBeDefined();
    expect(issued).toMatch(/^ML_SESS=ml_sess_[A-Za-z0-9_-]{43};/);
  });

  it('the same session ID twice in one header is trusted for neither', async () => {
    const b = t.browser();
    await b.post('/s/set', { mine: true });
    const res = await request(t.server as never).get('/s/get').set('Cookie', `${b.cookie}; ${b.cookie}`).set('user-agent', 'jest-browser/1.0');
    expect(res.body.id).toBeNull();
  });

  it('ASVS 3.1.1 / 3.2.3: the session ID is read from the cookie only, never from the query string or body', async () => {
    const b = t.browser();
    await b.post('/s/set', { mine: true });
    const res = await request(t.server as never).post(`/s/set?ML_SESS=${b.sessionId}`).set('user-agent', 'jest-browser/1.0').send({ ML_SESS: b.sessionId });
    const issued = ([] as string[]).concat((res.headers['set-cookie'] as unknown as string[]) ?? []).join();
    expect(issued).not.toContain(b.sessionId!);
  });

  it('stored metadata: createdAt, lastActivity, expiresAt', async () => {
    const b = t.browser();
    const before = Date.now();
    await b.post('/s/set', { a: 1 });
    const meta = (await b.get('/s/meta')).body;
    expect(meta.createdAt).toBeGreaterThanOrEqual(before);
    expect(meta.expiresAt - meta.createdAt).toBe(43200 * 1000);
    expect(meta.lastActivity).toBeGreaterThanOrEqual(meta.createdAt);
  });

  it('ASVS 7.1.1: events carry no raw ID', () => {
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(JSON.stringify(e)).not.toMatch(/ml_sess_/);
    }
  });

});
