/** ASVS 4.2.2 (anti-CSRF), ASVS 50.x/OWASP CSRF Prevention Cheat Sheet (Fetch Metadata, Origin checks, token compare). */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Body, Controller, Get, Injectable, Post, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import request from 'supertest';
import { CsrfGuard } from '../../lib/http/csrf.guard.js';
import { Session, SkipCsrf } from '../../lib/http/session.decorators.js';
import { SessionManager } from '../../lib/core/session-manager.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import type { SessionEvent } from '../../lib/contracts/session-event.interface.js';
import { createTestApp, PLATFORMS, type Browser, type TestApp } from '../support/test-app.js';

/** Proves `request.session` is there for guards on both platforms. */
@Injectable()
class NeedsSessionGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ session?: SessionInterface }>();
    return typeof req.session?.get === 'function';
  }
}

@Controller('csrf')
@UseGuards(CsrfGuard)
class CsrfController {
  @Get('token')
  token(@Session() s: SessionInterface) {
    return { token: s.csrfToken() };
  }

  @Post('change')
  change(@Session() s: SessionInterface, @Body() b: { name?: string }) {
    s.set('name', b?.name ?? 'x');
    return { ok: true };
  }

  @Post('webhook')
  @SkipCsrf()
  webhook() {
    return { ok: true };
  }

  @Post('guarded')
  @UseGuards(NeedsSessionGuard)
  guarded() {
    return { ok: true };
  }

  @Post('hook')
  hook() {
    return { ok: true };
  }

  @Post('regenerate')
  regenerate(@Session() s: SessionInterface) {
    s.regenerate();
    return { token: s.csrfToken() };
  }
}

@Controller('deep')
class DeepController {
  @Post('csrf/hook')
  hook() {
    return { ok: true };
  }
}

@Controller('open')
class OpenController {
  @Post('change')
  change() {
    return { ok: true };
  }
}

async function signedIn(t: TestApp): Promise<{ b: Browser; token: string }> {
  const b = t.browser();
  const token = (await b.get('/csrf/token')).body.token as string;
  return { b, token };
}

describe.each(PLATFORMS)('CsrfGuard (%s)', (platform) => {
  let t: TestApp;
  const events: SessionEvent[] = [];
  beforeAll(async () => {
    t = await createTestApp(platform, {}, { controllers: [CsrfController, OpenController] });
    t.app.get(SessionManager).events$.subscribe((e) => events.push(e));
  });
  afterAll(() => t.close());

  it('token: at least 128 bits, base64url, stable within a session', async () => {
    const { b, token } = await signedIn(t);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    expect((await b.get('/csrf/token')).body.token).toBe(token);
  });

  it('accepts the token in X-CSRF-Token, in a JSON _token, in a urlencoded _token, and in X-XSRF-TOKEN', async () => {
    const { b, token } = await signedIn(t);
    b.headers['x-csrf-token'] = token;
    expect((await b.post('/csrf/change', { name: 'a' })).status).toBe(201);
    delete b.headers['x-csrf-token'];
    expect((await b.post('/csrf/change', { _token: token, name: 'b' })).status).toBe(201);
    const form = await request(t.server as never)
      .post('/csrf/change')
      .set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0', 'content-type': 'application/x-www-form-urlencoded' })
      .send(`_token=${encodeURIComponent(token)}&name=c`);
    expect(form.status).toBe(201);
    b.headers['x-xsrf-token'] = token;
    expect((await b.post('/csrf/change', { name: 'd' })).status).toBe(201);
  });

  it('ASVS 4.2.2: a missing token → 403 with a clear message and a csrf-failure event', async () => {
    const { b } = await signedIn(t);
    const before = events.length;
    const res = await b.post('/csrf/change', { name: 'evil' });
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/X-CSRF-Token header or a _token form field/);
    expect(events.slice(before).some((e) => e.type === 'csrf-failure')).toBe(true);
    expect((await b.get('/s/get')).body.data.name).toBeUndefined();
  });

  it('ASVS 4.2.2: a wrong token, or a token of another session → 403', async () => {
    const { b, token } = await signedIn(t);
    const other = await signedIn(t);
    b.headers['x-csrf-token'] = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers['x-csrf-token'] = other.token;
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers['x-csrf-token'] = token + 'x';
    expect((await b.post('/csrf/change')).status).toBe(403);
  });

  it('a request without a session, or a session that never issued a token → 403', async () => {
    const res = await request(t.server as never).post('/csrf/change').set('x-csrf-token', 'anything');
    expect(res.status).toBe(403);
    const b = t.browser();
    await b.post('/s/set', { a: 1 });
    b.headers['x-csrf-token'] = '';
    expect((await b.post('/csrf/change')).status).toBe(403);
  });

  it.each([
    ['an array', { _token: ['x'] }],
    ['a number', { _token: 12345 }],
    ['an object', { _token: { $ne: null } }],
    ['null', { _token: null }],
  ])('a non-string token (%s) → 403, never a 500', async (_l, body) => {
    const { b } = await signedIn(t);
    expect((await b.post('/csrf/change', body)).status).toBe(403);
  });

  it('a non-JSON body and no body at all → 403, never a 500', async () => {
    const { b } = await signedIn(t);
    const res = await request(t.server as never).post('/csrf/change').set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0', 'content-type': 'text/plain' }).send('_token=x');
    expect([403, 415]).toContain(res.status);
    expect((await request(t.server as never).post('/csrf/change').set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0' })).status).toBe(403);
  });

  it('OWASP Fetch Metadata: Sec-Fetch-Site cross-site is rejected even with a valid token; same-origin passes; same-site is rejected by default', async () => {
    const { b, token } = await signedIn(t);
    b.headers['x-csrf-token'] = token;
    b.headers['sec-fetch-site'] = 'cross-site';
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers['sec-fetch-site'] = 'same-site';
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers['sec-fetch-site'] = 'same-origin';
    const ok = await b.post('/csrf/change');
    expect(ok.status).toBe(201);
    expect(String(ok.headers.vary)).toMatch(/Origin/);
    expect(String(ok.headers.vary)).toMatch(/Sec-Fetch-Site/);
  });

  it('OWASP Verifying Origin: a foreign Origin is rejected even with a valid token; the own origin passes', async () => {
    const { b, token } = await signedIn(t);
    b.headers['x-csrf-token'] = token;
    b.headers.origin = 'https://evil.example';
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers.origin = 'null';
    expect((await b.post('/csrf/change')).status).toBe(403);
    b.headers.host = 'app.test:8080';
    b.headers.origin = 'http://app.test:8080';
    expect((await b.post('/csrf/change')).status).toBe(201);
    b.headers.origin = 'https://app.test:8080'; // scheme matters
    expect((await b.post('/csrf/change')).status).toBe(403);
  });

  it('@SkipCsrf() opts a route out; routes without the guard are not checked', async () => {
    expect((await request(t.server as never).post('/csrf/webhook')).status).toBe(201);
    expect((await request(t.server as never).post('/open/change')).status).toBe(201);
  });

  it('the token rotates on regenerate() and on invalidate()', async () => {
    const { b, token } = await signedIn(t);
    b.headers['x-csrf-token'] = token;
    const rotated = (await b.post('/csrf/regenerate')).body.token as string;
    expect(rotated).not.toBe(token);
    expect((await b.post('/csrf/change')).status).toBe(403); // the old token is dead
    b.headers['x-csrf-token'] = rotated;
    expect((await b.post('/csrf/change')).status).toBe(201);
    await b.post('/s/logout');
    const fresh = (await b.get('/csrf/token')).body.token as string;
    expect(fresh).not.toBe(rotated);
  });

  it('a token header sent twice counts as absent: the next source (_token) decides', async () => {
    const { b, token } = await signedIn(t);
    // Node joins a repeated header into "t, t"; it must not be compared as one token.
    const twice = (value: string) =>
      request(t.server as never)
        .post('/csrf/change')
        .set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0', 'X-CSRF-Token': [token, value] as unknown as string })
        .send({ _token: token, name: 'twice' });
    expect((await twice(token)).status).toBe(201);
    expect((await twice('forged')).status).toBe(201); // the header is absent, the body's token is right
    const noBody = await request(t.server as never)
      .post('/csrf/change')
      .set({ Cookie: b.cookie!, 'user-agent': 'jest-browser/1.0', 'X-CSRF-Token': [token, token] as unknown as string })
      .send({ name: 'none' });
    expect(noBody.status).toBe(403);
  });

  it('guards see request.session on this platform', async () => {
    const { b, token } = await signedIn(t);
    b.headers['x-csrf-token'] = token;
    expect((await b.post('/csrf/guarded')).status).toBe(201);
  });
});

describe.each(PLATFORMS)('CsrfGuard in global mode (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    // A global (g) or sticky (y) RegExp keeps state between test() calls: it must not flip.
    t = await createTestApp(platform, { csrf: { global: true, except: ['/open/*', /\/csrf\/hook$/gy], xsrfCookie: true, allowSameSite: true } }, { controllers: [CsrfController, OpenController, DeepController] });
  });
  afterAll(() => t.close());

  it('checks every mutating route, except excluded paths and @SkipCsrf()', async () => {
    expect((await t.browser().post('/s/set', { a: 1 })).status).toBe(403);
    expect((await request(t.server as never).post('/open/change')).status).toBe(201);
    expect((await request(t.server as never).post('/csrf/webhook')).status).toBe(201);
    const hooks = [];
    for (let i = 0; i < 4; i++) hooks.push((await request(t.server as never).post('/csrf/hook')).status);
    expect(hooks).toEqual([201, 201, 201, 201]);
    // The sticky flag keeps its meaning (a match at the start only): nothing else is excluded.
    expect((await request(t.server as never).post('/deep/csrf/hook')).status).toBe(403);
  });

  it('sends a script-readable XSRF-TOKEN cookie that axios/Angular echo back in X-XSRF-TOKEN; same-site allowed when opted in', async () => {
    const b = t.browser();
    const token = (await b.get('/csrf/token')).body.token as string;
    const xsrf = b.lastSetCookie.find((c) => c.startsWith('XSRF-TOKEN='))!;
    expect(xsrf).toBe(`XSRF-TOKEN=${token}; Path=/; SameSite=Lax`);
    expect(xsrf).not.toMatch(/HttpOnly/);
    await b.get('/csrf/token');
    expect(b.lastSetCookie.find((c) => c.startsWith('XSRF-TOKEN='))).toBeDefined(); // the test browser does not echo it, so it is resent
    b.headers['x-xsrf-token'] = token;
    b.headers['sec-fetch-site'] = 'same-site';
    expect((await b.post('/s/set', { a: 1 })).status).toBe(201);
    // Browsers send the sibling's Origin on a same-site request: accepted when same-site is allowed.
    b.headers.origin = 'https://admin.example.test';
    expect((await b.post('/s/set', { a: 2 })).status).toBe(201);
    // Without the same-site witness, a foreign Origin is still refused.
    b.headers['sec-fetch-site'] = 'cross-site';
    expect((await b.post('/s/set', { a: 3 })).status).toBe(403);
  });
});
