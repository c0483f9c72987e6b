/**
 * A finished request's session context must not reach its request or response. The context is
 * the value of a WeakMap keyed by the request: a value that reaches its own key keeps the whole
 * request (sockets' buffers, Fastify's reply, the handle's data) alive through every
 * young-generation collection, which doubled the GC time per request on Fastify
 * (docs/benchmarks.md). Checked on every way a request can end: commit, save() then `@Res()`,
 * an error, a guard's refusal (released on `close`), a silent read-only request, and a mode
 * switch in either direction.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Get, Injectable, Module, Post, Req, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Session, SessionReadOnly } from '../../lib/http/session.decorators.js';
import { getSessionContext, type SessionRequestContext } from '../../lib/http/session-lifecycle.service.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { sleep } from '../support/records.js';

/** The platform request of the latest request to each route (Express `req`, Fastify `request`). */
const seen = new Map<string, object>();

@Injectable()
class RefuseGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    seen.set('refused', context.switchToHttp().getRequest<object>());
    return false;
  }
}

@Controller('keep')
class KeepController {
  @Get('rw')
  rw(@Session() s: SessionInterface, @Req() req: object) {
    seen.set('rw', req);
    s.set('n', Number(s.get('n', 0)) + 1);
    return { ok: true };
  }

  @Get('ro')
  @SessionReadOnly()
  ro(@Session() s: SessionInterface, @Req() req: object) {
    seen.set('ro', req);
    return { n: s.get('n', 0) };
  }

  @Post('save-res')
  async saveRes(@Session() s: SessionInterface, @Req() req: object, @Res() res: { send(body: unknown): unknown }) {
    seen.set('save-res', req);
    s.set('saved', true);
    await s.save();
    res.send({ ok: true });
  }

  @Get('fail')
  fail(@Session() s: SessionInterface, @Req() req: object) {
    seen.set('fail', req);
    s.flash('error', 'nope');
    throw new Error('handler failed');
  }

  @Get('refused')
  @UseGuards(RefuseGuard)
  refused() {
    return { never: true };
  }

  // `items/new` shares the read-only `items/:id` pattern: started read-only by path, upgraded by the handler.
  @Get('items/new')
  upgraded(@Session() s: SessionInterface, @Req() req: object) {
    seen.set('upgrade', req);
    s.set('draft', true);
    return { readOnly: s.readOnly };
  }

  @Get('items/:id')
  @SessionReadOnly()
  item(@Req() req: object) {
    seen.set('item', req);
    return { ok: true };
  }
}

/** Under a RouterModule prefix the path guess misses the mark: started locking, downgraded by the handler. */
@Controller('users')
class AdminUsersController {
  @Get(':id')
  @SessionReadOnly()
  show(@Session() s: SessionInterface, @Req() req: object) {
    seen.set('downgrade', req);
    return { readOnly: s.readOnly };
  }
}

@Module({ controllers: [AdminUsersController] })
class AdminModule {}

/** An HTTP request or response of any platform: Node's own, or Fastify's request and reply around them. */
function isHttpObject(value: object): boolean {
  if (value instanceof IncomingMessage || value instanceof ServerResponse) return true;
  const raw = (value as { raw?: unknown }).raw;
  return raw instanceof IncomingMessage || raw instanceof ServerResponse;
}

/** The path to the first request or response reachable from the context's own fields (not through the manager), or null. */
function reachesHttp(ctx: SessionRequestContext): string | null {
  const visited = new Set<unknown>();
  const walk = (value: unknown, path: string): string | null => {
    if (value === null || typeof value !== 'object') return null; // closures are checked by name below
    if (visited.has(value)) return null;
    visited.add(value);
    if (isHttpObject(value)) return path;
    const entries: Array<[string, unknown]> =
      value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v]) : Reflect.ownKeys(value).map((k) => [String(k), (value as Record<PropertyKey, unknown>)[k]]);
    for (const [key, child] of entries) {
      if (key === 'host') continue; // the handle's SessionManager: shared by all requests, holds none
      const found = walk(child, `${path}.${key}`);
      if (found) return found;
    }
    return null;
  };
  return walk(ctx, 'ctx');
}

describe.each(PLATFORMS)('a finished request lets go of its response (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, {
      controllers: [KeepController],
      imports: [AdminModule, RouterModule.register([{ path: 'admin', module: AdminModule }])],
    });
  });
  afterAll(() => t.close());

  /** The context of the latest request to `route`, once its response has closed. */
  async function finished(route: string): Promise<SessionRequestContext> {
    const req = seen.get(route);
    expect(req).toBeDefined();
    seen.delete(route);
    const ctx = getSessionContext(req!);
    expect(ctx).toBeDefined();
    // The response's `close` may come just after the client has read it.
    for (let i = 0; i < 50 && ctx!.phase !== 'done'; i++) await sleep(10);
    expect(ctx!.phase).toBe('done');
    return ctx!;
  }

  async function expectDetached(route: string): Promise<void> {
    const ctx = await finished(route);
    expect(reachesHttp(ctx)).toBeNull();
    expect(ctx.handle.onSaved).toBeNull();
  }

  it('after a commit', async () => {
    const b = t.browser();
    expect((await b.get('/keep/rw')).status).toBe(200);
    await expectDetached('rw'); // a new session: its cookie was set
    expect((await b.get('/keep/rw')).status).toBe(200);
    await expectDetached('rw'); // an existing one: no header
  });

  it('after save() and a response written with @Res()', async () => {
    expect((await t.browser().post('/keep/save-res')).status).toBe(201);
    await expectDetached('save-res');
  });

  it('after a handler error (the commit still runs)', async () => {
    const b = t.browser();
    await b.get('/keep/rw');
    expect((await b.get('/keep/fail')).status).toBe(500);
    await expectDetached('fail');
  });

  it('after a read-only request with nothing to commit', async () => {
    const b = t.browser();
    await b.get('/keep/rw');
    expect((await b.get('/keep/ro')).status).toBe(200);
    await expectDetached('ro');
  });

  it('after an upgrade to locking and a downgrade to read-only', async () => {
    const b = t.browser();
    await b.get('/keep/rw');
    expect((await b.get('/keep/items/new')).body).toEqual({ readOnly: false });
    await expectDetached('upgrade');
    expect((await b.get('/admin/users/7')).body).toEqual({ readOnly: true });
    await expectDetached('downgrade');
  });

  it('after a guard refused the request (released when the response closes)', async () => {
    const b = t.browser();
    await b.get('/keep/rw');
    expect((await b.get('/keep/refused')).status).toBe(403);
    await expectDetached('refused');
  });
});
