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

/** Express' `res` and Fastify's `reply` both have `send()`. */
type Sender = { send(body: unknown): unknown };
/** Express' `res` is the raw response; Fastify's reply has it as `raw` (where app middleware writes). */
type PlatformResponse = { raw?: ServerResponse } & ServerResponse;
const rawOf = (res: PlatformResponse): ServerResponse => res.raw ?? res;

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
