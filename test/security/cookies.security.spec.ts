/** ASVS 3.4.1 (Secure), 3.4.2 (HttpOnly), 3.4.3 (SameSite), 3.4.5 (Path); the OWASP Session Management Cheat Sheet (cookie attributes). */
import { describe, it, expect } from '@jest/globals';
import { createTestApp, PLATFORMS } from '../support/test-app.js';

function sessionCookie(lines: string[]): string {
  const line = lines.find((l) => l.startsWith('ML_SESS='));
  if (!line) throw new Error(`no session cookie in ${JSON.stringify(lines)}`);
  return line;
}

describe.each(PLATFORMS)('session cookie (%s)', (platform) => {
  it('ASVS 3.4.2 / 3.4.3 / 3.4.5: defaults: HttpOnly, SameSite=Lax, Path=/, no Secure over plain HTTP, no Expires', async () => {
    const t = await createTestApp(platform);
    try {
      const b = t.browser();
      await b.post('/s/set', { a: 1 });
      const c = sessionCookie(b.lastSetCookie);
      expect(c).toMatch(/; Path=\//);
      expect(c).toMatch(/; HttpOnly/);
      expect(c).toMatch(/; SameSite=Lax/);
      expect(c).not.toMatch(/Secure/);
      expect(c).not.toMatch(/Expires|Max-Age|Domain|Partitioned/);
    } finally {
      await t.close();
    }
  });

  it("ASVS 3.4.1: secure 'auto' behind a trusted proxy that says https: Secure", async () => {
    const t = await createTestApp(platform, { trustProxy: true });
    try {
      const b = t.browser({ 'x-forwarded-proto': 'https' });
      await b.post('/s/set', { a: 1 });
      expect(sessionCookie(b.lastSetCookie)).toMatch(/; Secure/);
    } finally {
      await t.close();
    }
  });

  it("ASVS 3.4.1: secure 'auto' with an untrusted X-Forwarded-Proto: not Secure", async () => {
    const t = await createTestApp(platform);
    try {
      const b = t.browser({ 'x-forwarded-proto': 'https' });
      await b.post('/s/set', { a: 1 });
      expect(sessionCookie(b.lastSetCookie)).not.toMatch(/Secure/);
    } finally {
      await t.close();
    }
  });

  it('custom attributes: name, strict, domain, path, persistent, partitioned', async () => {
    const t = await createTestApp(platform, {
      cookie: { name: 'app_sid', sameSite: 'strict', domain: 'example.test', secure: true, partitioned: true, persistent: true },
    });
    try {
      const res = await t.browser().post('/s/set', { a: 1 });
      const lines = ([] as string[]).concat(res.headers['set-cookie'] as unknown as string[]);
      const c = lines.find((l) => l.startsWith('app_sid='))!;
      expect(c).toMatch(/^app_sid=ml_sess_[A-Za-z0-9_-]{43}; Path=\/; Domain=example.test; Expires=[A-Z][a-z]{2}, /);
      expect(c).toMatch(/; HttpOnly; Secure; SameSite=Strict; Partitioned$/);
      const expires = Date.parse(/Expires=([^;]+)/.exec(c)![1]);
      expect(Math.abs(expires - (Date.now() + 43200 * 1000))).toBeLessThan(5000);
    } finally {
      await t.close();
    }
  });

  it('Set-Cookie only when needed: not on reads, not on later writes, yes on regenerate', async () => {
    const t = await createTestApp(platform);
    try {
      const b = t.browser();
      await b.post('/s/set', { a: 1 });
      expect(b.lastSetCookie).toHaveLength(1);
      await b.get('/s/get');
      expect(b.lastSetCookie).toHaveLength(0);
      await b.post('/s/set', { a: 2 });
      expect(b.lastSetCookie).toHaveLength(0);
      await b.get('/s/untouched');
      expect(b.lastSetCookie).toHaveLength(0);
      await b.post('/s/regenerate');
      expect(b.lastSetCookie).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it('noStore: Cache-Control: no-store on responses of requests that have a session, not on others', async () => {
    const t = await createTestApp(platform, { noStore: true });
    try {
      const b = t.browser();
      expect((await b.get('/s/untouched')).headers['cache-control']).toBeUndefined();
      expect((await b.post('/s/set', { a: 1 })).headers['cache-control']).toBe('no-store');
      expect((await b.get('/s/get')).headers['cache-control']).toBe('no-store');
    } finally {
      await t.close();
    }
  });
});
