import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Post, UseGuards } from '@nestjs/common';
import request from 'supertest';
import { createTestSession } from '../../lib/testing/session-testing.js';
import { CsrfGuard } from '../../lib/http/csrf.guard.js';
import { Session } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

@Controller('cart')
@UseGuards(CsrfGuard)
class CartController {
  @Post('checkout')
  checkout(@Session() s: SessionInterface) {
    const items = s.get('cart.items', []) as string[];
    s.forget('cart');
    return { items, user: s.getUserId(), notice: s.getFlash('notice') ?? null };
  }
}

describe.each(PLATFORMS)('createTestSession() for users’ own e2e tests (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, { controllers: [CartController] });
  });
  afterAll(() => t.close());

  it('a request starts with the given data, user, flash and a valid CSRF token', async () => {
    const s = await createTestSession(t.app, { data: { 'cart.items': ['apple', 'pear'] }, userId: 42, flash: { notice: 'from the previous request' } });
    expect(s.id).toMatch(/^ml_sess_/);
    const res = await request(t.server as never).post('/cart/checkout').set(s.headers);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ items: ['apple', 'pear'], user: '42', notice: 'from the previous request' });
    // The change made by that request is committed like any other.
    const again = await request(t.server as never).post('/cart/checkout').set(s.headers);
    expect(again.body).toEqual({ items: [], user: '42', notice: null });
  });

  it('without the CSRF header the guard still applies', async () => {
    const s = await createTestSession(t.app);
    const res = await request(t.server as never).post('/cart/checkout').set({ Cookie: s.cookie, 'User-Agent': 'nest-test' });
    expect(res.status).toBe(403);
  });
});
