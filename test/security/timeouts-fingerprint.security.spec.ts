/** ASVS 3.3.2 (idle and absolute timeouts), 3.3.1 (expired sessions are unusable); the OWASP Session Management Cheat Sheet (session binding: fingerprint of User-Agent and IP). */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { SessionManager } from '../../lib/core/session-manager.js';
import type { SessionEvent } from '../../lib/contracts/session-event.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { sleep } from '../support/records.js';

describe.each(PLATFORMS)('idle and absolute timeouts (%s)', (platform) => {
  let t: TestApp;
  const events: SessionEvent[] = [];
  const afterCleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of afterCleanups) await c();
  });
  beforeAll(async () => {
    t = await createTestApp(platform, { idleTimeout: 1, absoluteTimeout: 1.5 });
    t.app.get(SessionManager).events$.subscribe((e) => events.push(e));
  });
  afterAll(() => t.close());

  it('ASVS 3.3.2 idle timeout: an idle session dies after idleTimeout', async () => {
    const idle = await createTestApp(platform, { idleTimeout: 1, absoluteTimeout: 60 });
    idle.app.get(SessionManager).events$.subscribe((e) => events.push(e));
    const b = idle.browser();
    afterCleanups.push(() => idle.close());
    await b.post('/s/set', { a: 1 });
    await sleep(600);
    expect((await b.get('/s/get')).body.data.a).toBe(1); // activity inside the window keeps it alive
    await sleep(600);
    expect((await b.get('/s/get')).body.data.a).toBe(1);
    await sleep(1300);
    const res = await b.get('/s/get');
    expect(res.body.id).toBeNull();
    expect(res.body.data).toEqual({});
    expect(b.lastSetCookie.join()).toMatch(/ML_SESS=; .*Max-Age=0/); // the dead session's cookie is deleted
    expect(events.some((e) => e.type === 'expired' && e.reason === 'idle')).toBe(true);
  });

  it('ASVS 3.3.2 absolute timeout: an active session still dies at absoluteTimeout', async () => {
    const b = t.browser();
    await b.post('/s/set', { a: 1 });
    const born = Date.now();
    let alive = true;
    while (Date.now() - born < 1300) {
      alive = (await b.get('/s/get')).body.data.a === 1;
      expect(alive).toBe(true);
      await sleep(150);
    }
    await sleep(Math.max(0, 1600 - (Date.now() - born)));
    expect((await b.get('/s/get')).body.data).toEqual({});
    expect(events.some((e) => e.type === 'expired' && e.reason === 'absolute')).toBe(true);
  });
});

describe.each(PLATFORMS)('fingerprint: User-Agent and IP (%s)', (platform) => {
  it('OWASP Session Mgmt binding: a changed User-Agent kills the session', async () => {
    const t = await createTestApp(platform);
    const events: SessionEvent[] = [];
    t.app.get(SessionManager).events$.subscribe((e) => events.push(e));
    try {
      const b = t.browser();
      await b.post('/s/set', { a: 1 });
      b.headers['user-agent'] = 'another-browser/2.0';
      expect((await b.get('/s/get')).body.data).toEqual({});
      expect(events.some((e) => e.type === 'fingerprint-mismatch' && e.reason === 'user-agent')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('strict IP policy with a trusted proxy: a changed client IP kills the session', async () => {
    const t = await createTestApp(platform, { fingerprint: { ip: 'strict' }, trustProxy: true });
    try {
      const b = t.browser({ 'x-forwarded-for': '198.51.100.1' });
      await b.post('/s/set', { a: 1 });
      expect((await b.get('/s/get')).body.data.a).toBe(1);
      b.headers['x-forwarded-for'] = '198.51.100.2, 10.0.0.1';
      expect((await b.get('/s/get')).body.data).toEqual({});
    } finally {
      await t.close();
    }
  });

  it('strict IP policy with trustProxy: 1 (one proxy that appends): an X-Forwarded-For entry the client wrote cannot pass for the victim', async () => {
    const t = await createTestApp(platform, { fingerprint: { ip: 'strict' }, trustProxy: 1 });
    try {
      const victim = t.browser({ 'x-forwarded-for': '10.9.9.9, 198.51.100.1' }); // junk the victim's browser sent, then what the proxy appended
      await victim.post('/s/set', { a: 1 });
      expect((await victim.get('/s/get')).body.data.a).toBe(1);
      // The thief forges the victim's address; the proxy appends the thief's real one.
      const thief = t.browser({ 'x-forwarded-for': '198.51.100.1, 203.0.113.66' });
      thief.cookie = victim.cookie;
      expect((await thief.get('/s/get')).body.data).toEqual({});
    } finally {
      await t.close();
    }
  });

  it('relaxed IP policy: a changed client IP keeps the session', async () => {
    const t = await createTestApp(platform, { fingerprint: { ip: 'relaxed' }, trustProxy: true });
    try {
      const b = t.browser({ 'x-forwarded-for': '198.51.100.1' });
      await b.post('/s/set', { a: 1 });
      b.headers['x-forwarded-for'] = '203.0.113.9';
      expect((await b.get('/s/get')).body.data.a).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('without trustProxy, X-Forwarded-For is ignored (strict policy sees the socket address)', async () => {
    const t = await createTestApp(platform, { fingerprint: { ip: 'strict' } });
    try {
      const b = t.browser({ 'x-forwarded-for': '198.51.100.1' });
      await b.post('/s/set', { a: 1 });
      b.headers['x-forwarded-for'] = '198.51.100.2';
      expect((await b.get('/s/get')).body.data.a).toBe(1);
    } finally {
      await t.close();
    }
  });
});
