/**
 * `@SessionReadOnly()` is decided by the handler, not by the path the middleware guessed:
 * a sibling route sharing a read-only route's pattern still locks and writes, and a read-only
 * handler under a RouterModule prefix (which the path guess misses) still runs in parallel.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Get, Module, Param, Req } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { Session, SessionReadOnly } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

@Controller('items')
class ItemsController {
  @Get('new')
  create(@Session() s: SessionInterface, @Req() req: { session?: unknown }) {
    s.set('draft', true); // shares the `:id` pattern below, but changes the session
    // Started read-only by path, upgraded by the handler: `req.session` must be the new handle too.
    return { ok: true, readOnly: s.readOnly, requestSessionIsHandle: req.session === s };
  }

  @Get(':id')
  @SessionReadOnly()
  show(@Session() s: SessionInterface, @Param('id') id: string) {
    return { id, readOnly: s.readOnly };
  }
}

@Controller('users')
class AdminUsersController {
  @Get(':id')
  @SessionReadOnly()
  async show(@Session() s: SessionInterface) {
    await sleep(300);
    return { readOnly: s.readOnly, counter: s.get('counter', 0) };
  }
}

/** One handler function shared by two controllers: only the class says whether it is read-only. */
class NotesBase {
  @Get('mode')
  mode(@Session() s: SessionInterface) {
    return { readOnly: s.readOnly };
  }
}

@Controller('notes-rw')
class LockingNotesController extends NotesBase {}

@Controller('notes-ro')
@SessionReadOnly()
class ReadOnlyNotesController extends NotesBase {}

@Module({ controllers: [AdminUsersController] })
class AdminModule {}

describe.each(PLATFORMS)('@SessionReadOnly() follows the handler (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, {
      controllers: [ItemsController, LockingNotesController, ReadOnlyNotesController],
      imports: [AdminModule, RouterModule.register([{ path: 'admin', module: AdminModule }])],
    });
  });
  afterAll(() => t.close());

  it('a locking sibling of a read-only pattern (GET /items/new vs /items/:id) can change the session', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    const res = await b.get('/items/new');
    expect(res.status).toBe(200);
    expect(res.body.readOnly).toBe(false);
    expect(res.body.requestSessionIsHandle).toBe(true);
    expect((await b.get('/s/get')).body.data.draft).toBe(true);
    expect((await b.get('/items/42')).body).toEqual({ id: '42', readOnly: true });
  });

  it('an inherited handler follows its controller: read-only under a @SessionReadOnly() class, locking under another', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    for (let i = 0; i < 2; i++) {
      expect((await b.get('/notes-rw/mode')).body).toEqual({ readOnly: false });
      expect((await b.get('/notes-ro/mode')).body).toEqual({ readOnly: true });
    }
  });

  it('a read-only handler under a RouterModule prefix runs without holding the lock', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 5 });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => b.get('/admin/users/1')));
    expect(results.every((r) => r.status === 200 && r.body.readOnly === true && r.body.counter === 5)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1200); // 6 × 300 ms if they were serialized
  });
});

describe.each(PLATFORMS)('a path guessed read-only whose handler locks (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, { lock: { waitTimeout: 0.3, ttl: 30 } }, { controllers: [ItemsController] });
  });
  afterAll(() => t.close());

  it('answers 423 with Retry-After when the lock it upgrades to is not free in time', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    const holding = b.get('/s/hold?ms=1200');
    await sleep(150);
    // Started read-only (the `:id` pattern), the handler of /items/new needs the lock.
    const blocked = await b.get('/items/new');
    expect(blocked.status).toBe(423);
    expect(blocked.headers['retry-after']).toBe('1');
    expect((await holding).status).toBe(200);
    expect((await b.get('/items/new')).status).toBe(200);
  });
});
