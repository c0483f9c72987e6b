/**
 * `req.session` on the platform's request object: on Express a getter on the app's request
 * prototype (no property stored per request), on Fastify a request decorator. Either way it is
 * the very handle `@Session()` gives, and an application may still assign its own value.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Get, Post, Req } from '@nestjs/common';
import { Session } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

type WithSession = { session?: unknown };

@Controller('req-session')
class RequestSessionController {
  @Post('count')
  count(@Session() s: SessionInterface, @Req() req: WithSession) {
    const viaRequest = req.session as SessionInterface;
    viaRequest.set('n', (viaRequest.get('n', 0) as number) + 1);
    return { same: viaRequest === s, n: s.get('n') };
  }

  @Get('replace')
  replace(@Req() req: WithSession) {
    req.session = 'replaced by the application';
    return { value: req.session };
  }

  @Get('peek')
  peek(@Session() s: SessionInterface, @Req() req: WithSession) {
    return { same: req.session === s, n: s.get('n', null) };
  }
}

describe.each(PLATFORMS)('req.session (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, { controllers: [RequestSessionController] });
  });
  afterAll(() => t.close());

  it('is the handle @Session() gives, and changes made through it are committed', async () => {
    const b = t.browser();
    expect((await b.post('/req-session/count', {})).body).toEqual({ same: true, n: 1 });
    expect((await b.post('/req-session/count', {})).body).toEqual({ same: true, n: 2 });
    expect((await b.get('/req-session/peek')).body).toEqual({ same: true, n: 2 });
  });

  it('an application may assign req.session for its own request; the next request has its session again', async () => {
    const b = t.browser();
    await b.post('/req-session/count', {});
    expect((await b.get('/req-session/replace')).body).toEqual({ value: 'replaced by the application' });
    expect((await b.get('/req-session/peek')).body).toEqual({ same: true, n: 1 });
  });
});
