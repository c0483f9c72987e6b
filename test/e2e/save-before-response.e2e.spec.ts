/**
 * `await session.save()` before a handler writes the response itself (`@Res()` without
 * passthrough): the commit then runs after the response has gone, so the save must put the
 * session's cookie on the response, or a sign-in (regenerate → save → send) leaves the browser
 * with an ID that was just destroyed. And a cookie set by a save is never sent twice, nor left
 * behind when the ID changes again before the commit.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Get, Injectable, Post, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { Session, getSession } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type Browser, type TestApp } from '../support/test-app.js';
import { sleep } from '../support/records.js';

/** Express' `res` and Fastify's `reply` both have `send()`. */
type Sender = { send(body: unknown): unknown };
/** Express' `res` is the raw response; Fastify's reply has it as `raw` (where app middleware writes). */
type PlatformResponse = { raw?: ServerResponse } & ServerResponse;
const rawOf = (res: PlatformResponse): ServerResponse => res.raw ?? res;
/** Adds a Set-Cookie value the way each platform's own API does: Express `res.append`, Fastify `reply.header`. */
function appendCookie(res: unknown, value: string): void {
  const r = res as { append?: (k: string, v: string) => unknown; header(k: string, v: string): unknown };
  if (typeof r.append === 'function') r.append('Set-Cookie', value);
  else r.header('set-cookie', value);
}

/** Signs the user in before the interceptor runs: its save() is the only chance to set the cookie. */
@Injectable()
class SignInGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const s = getSession(context.switchToHttp().getRequest()) as SessionInterface;
    s.regenerate();
    s.setUserId('g-1');
    await s.save();
    return true;
  }
}

@Controller('manual')
class ManualResponseController {
  @Post('sign-in')
  async signIn(@Session() s: SessionInterface, @Res() res: Sender) {
    s.regenerate();
    s.setUserId('u-7');
    s.set('cart', 3);
    await s.save();
    res.send({ id: s.getId() });
  }

  @Post('first')
  async first(@Session() s: SessionInterface, @Res() res: Sender) {
    s.set('visits', 1);
    await s.save();
    res.send({ id: s.getId() });
  }

  @Post('save-then-return')
  async saveThenReturn(@Session() s: SessionInterface) {
    s.set('a', 1);
    await s.save();
    s.set('b', 2);
    return { id: s.getId() };
  }

  @Post('save-then-regenerate')
  async saveThenRegenerate(@Session() s: SessionInterface) {
    s.set('a', 1);
    await s.save();
    s.regenerate();
    s.set('b', 2);
    return { id: s.getId() };
  }

  @Post('guard-sign-in')
  @UseGuards(SignInGuard)
  guardSignIn(@Session() s: SessionInterface, @Res() res: Sender) {
    res.send({ id: s.getId() });
  }

  @Post('guard-sign-in-returned')
  @UseGuards(SignInGuard)
  guardSignInReturned(@Session() s: SessionInterface) {
    s.set('after', true);
    return { id: s.getId() };
  }

  @Post('app-cookie-then-invalidate')
  async appCookieThenInvalidate(@Session() s: SessionInterface, @Res({ passthrough: true }) res: PlatformResponse) {
    rawOf(res).setHeader('set-cookie', ['app=1; Path=/']);
    s.set('a', 1);
    await s.save();
    s.invalidate();
    return { ok: true };
  }

  @Post('app-overwrites-after-save')
  async appOverwritesAfterSave(@Session() s: SessionInterface, @Res({ passthrough: true }) res: PlatformResponse) {
    s.set('a', 1);
    await s.save();
    rawOf(res).setHeader('set-cookie', ['app=2; Path=/']); // replaces what the save put there (Express)
    return { id: s.getId() };
  }

  @Post('guard-sign-in-app-cookie')
  @UseGuards(SignInGuard)
  guardSignInAppCookie(@Session() s: SessionInterface, @Res() res: Sender) {
    appendCookie(res, 'app=3; Path=/');
    res.send({ id: s.getId() });
  }

  @Post('save-then-app-cookie')
  async saveThenAppCookie(@Session() s: SessionInterface, @Res() res: Sender) {
    s.set('a', 1);
    await s.save();
    appendCookie(res, 'app=4; Path=/');
    res.send({ id: s.getId() });
  }

  @Post('save-then-raw-end')
  async saveThenRawEnd(@Session() s: SessionInterface, @Res() res: PlatformResponse) {
    s.set('a', 1);
    await s.save();
    const raw = rawOf(res);
    raw.setHeader('content-type', 'application/json');
    raw.end(JSON.stringify({ id: s.getId() }));
  }

  @Post('send-then-save')
  async sendThenSave(@Session() s: SessionInterface, @Res() res: Sender) {
    s.set('a', 1);
    res.send({ id: s.getId() });
    await s.save();
  }

  @Get('read')
  read(@Session() s: SessionInterface) {
    return { id: s.getId(), userId: s.getUserId(), data: s.all() };
  }
}

function sessionCookies(b: Browser): string[] {
  return b.lastSetCookie.filter((line) => line.startsWith('ML_SESS='));
}

describe.each(PLATFORMS)('save() before the handler writes the response (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, { controllers: [ManualResponseController] });
  });
  afterAll(() => t.close());

  it('a sign-in written with @Res() sends the regenerated ID, and the old one is gone', async () => {
    const b = t.browser();
    await b.post('/s/set', { before: true });
    const oldCookie = b.cookie!;
    const res = await b.post('/manual/sign-in');
    expect(res.status).toBe(201);
    const newId = (res.body as { id: string }).id;
    expect(sessionCookies(b)).toHaveLength(1);
    expect(b.sessionId).toBe(newId);
    expect(newId).not.toBe(oldCookie.slice('ML_SESS='.length));
    const read = await b.get('/manual/read');
    expect(read.body).toEqual({ id: newId, userId: 'u-7', data: { before: true, cart: 3 } });
    const stale = await t.browser({ cookie: oldCookie }).get('/manual/read');
    expect((stale.body as { id: string | null }).id).not.toBe(oldCookie.slice('ML_SESS='.length));
    expect((stale.body as { data: unknown }).data).toEqual({});
  });

  it('a new session saved before @Res() writes gets its cookie', async () => {
    const b = t.browser();
    const res = await b.post('/manual/first');
    expect(sessionCookies(b)).toHaveLength(1);
    expect(b.sessionId).toBe((res.body as { id: string }).id);
    expect((await b.get('/manual/read')).body).toMatchObject({ data: { visits: 1 } });
  });

  it('save() then more changes: one cookie, and the commit still stores the rest', async () => {
    const b = t.browser();
    const res = await b.post('/manual/save-then-return');
    expect(sessionCookies(b)).toHaveLength(1);
    expect(b.sessionId).toBe((res.body as { id: string }).id);
    expect((await b.get('/manual/read')).body).toMatchObject({ data: { a: 1, b: 2 } });
  });

  it('save() then regenerate(): only the final ID is sent', async () => {
    const b = t.browser();
    const res = await b.post('/manual/save-then-regenerate');
    const finalId = (res.body as { id: string }).id;
    expect(sessionCookies(b)).toEqual([expect.stringMatching(new RegExp(`^ML_SESS=${finalId};`))]);
    expect((await b.get('/manual/read')).body).toMatchObject({ id: finalId, data: { a: 1, b: 2 } });
  });

  it('a guard that signs in and saves, then a handler that sends with @Res(): the new ID is sent', async () => {
    const b = t.browser();
    await b.post('/s/set', { before: 1 });
    const res = await b.post('/manual/guard-sign-in');
    const newId = (res.body as { id: string }).id;
    expect(sessionCookies(b)).toEqual([expect.stringMatching(new RegExp(`^ML_SESS=${newId};`))]);
    expect((await b.get('/manual/read')).body).toEqual({ id: newId, userId: 'g-1', data: { before: 1 } });
  });

  it('a guard that signs in and saves, then a handler that returns: one cookie, the final ID', async () => {
    const b = t.browser();
    await b.post('/s/set', { before: 1 });
    const res = await b.post('/manual/guard-sign-in-returned');
    const newId = (res.body as { id: string }).id;
    expect(sessionCookies(b)).toEqual([expect.stringMatching(new RegExp(`^ML_SESS=${newId};`))]);
    expect((await b.get('/manual/read')).body).toEqual({ id: newId, userId: 'g-1', data: { before: 1, after: true } });
  });

  it("the application's own cookie survives a save() and an invalidate() that takes the session's back", async () => {
    const b = t.browser();
    await b.post('/manual/app-cookie-then-invalidate');
    expect(b.lastSetCookie).toEqual(['app=1; Path=/']);
  });

  it('a cookie the application wrote over the saved one: the commit puts the session cookie back', async () => {
    const b = t.browser();
    const res = await b.post('/manual/app-overwrites-after-save');
    const id = (res.body as { id: string }).id;
    expect(b.lastSetCookie).toEqual(expect.arrayContaining(['app=2; Path=/', expect.stringMatching(new RegExp(`^ML_SESS=${id};`))]));
    expect(b.lastSetCookie).toHaveLength(2);
  });
});

describe.each(PLATFORMS)('save() and the application\'s own Set-Cookie calls (%s)', (platform) => {
  let t: TestApp;
  const warnings: string[] = [];
  beforeAll(async () => {
    const logger = { log: () => {}, error: () => {}, warn: (m: unknown) => void warnings.push(String(m)) };
    t = await createTestApp(platform, {}, { controllers: [ManualResponseController], logger });
  });
  afterAll(() => t.close());

  it('a guard saved a sign-in, then the handler adds its own cookie with the platform API and sends: both go out', async () => {
    const b = t.browser();
    await b.post('/s/set', { before: 1 });
    const res = await b.post('/manual/guard-sign-in-app-cookie');
    const newId = (res.body as { id: string }).id;
    expect(b.lastSetCookie).toEqual(expect.arrayContaining(['app=3; Path=/', expect.stringMatching(new RegExp(`^ML_SESS=${newId};`))]));
    expect(b.lastSetCookie).toHaveLength(2);
    expect((await b.get('/manual/read')).body).toMatchObject({ id: newId, userId: 'g-1' });
  });

  it('save(), then a cookie of its own, then send: both go out and nothing is reported as too late', async () => {
    warnings.length = 0;
    const b = t.browser();
    const res = await b.post('/manual/save-then-app-cookie');
    const id = (res.body as { id: string }).id;
    expect(b.lastSetCookie).toEqual(expect.arrayContaining(['app=4; Path=/', expect.stringMatching(new RegExp(`^ML_SESS=${id};`))]));
    expect(b.lastSetCookie).toHaveLength(2);
    await sleep(50); // the commit runs after the response
    expect(warnings).toEqual([]);
  });

  it('save(), then the handler writes through the raw response: the cookie goes out', async () => {
    const b = t.browser();
    const res = await b.post('/manual/save-then-raw-end');
    const id = (JSON.parse(res.text) as { id: string }).id;
    expect(sessionCookies(b)).toEqual([expect.stringMatching(new RegExp(`^ML_SESS=${id};`))]);
  });

  it('a save() after the response was sent: the data is stored, and the warning is logged once', async () => {
    warnings.length = 0;
    const b = t.browser();
    await b.post('/manual/send-then-save');
    expect(sessionCookies(b)).toEqual([]);
    await sleep(50);
    expect(warnings.filter((w) => /sent before the session was committed/.test(w))).toHaveLength(1);
  });
});
