/**
 * One Nest application for the e2e suites, on Express or Fastify, with routes that exercise
 * every part of the session lifecycle. `Browser` keeps cookies like a user agent would.
 */
import 'reflect-metadata';
import {
  BadRequestException, Body, ConflictException, Controller, Get, Injectable, Module, Param, Post, Query, Res, UseGuards,
  type CanActivate, type DynamicModule, type INestApplication, type LoggerService, type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import { SessionModule } from '../../lib/session.module.js';
import { Session, SessionReadOnly } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import type { SessionModuleOptions } from '../../lib/contracts/session-options.interface.js';

export type Platform = 'express' | 'fastify';
export const PLATFORMS: Platform[] = ['express', 'fastify'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

@Injectable()
class DenyGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

@Controller('s')
export class TestSessionController {
  @Get('get')
  get(@Session() s: SessionInterface) {
    return { id: s.getId(), data: s.all(), userId: s.getUserId() };
  }

  @Post('set')
  set(@Session() s: SessionInterface, @Body() body: Record<string, unknown>) {
    for (const [k, v] of Object.entries(body ?? {})) s.set(k, v);
    return { id: s.getId() };
  }

  @Post('flash')
  flash(@Session() s: SessionInterface, @Body() b: { key: string; value: unknown }) {
    s.flash(b.key, b.value);
    return { sameRequest: s.getFlash(b.key) ?? null };
  }

  @Post('flash-many')
  flashMany(@Session() s: SessionInterface, @Body() b: Record<string, unknown>) {
    for (const [k, v] of Object.entries(b)) s.flash(k, v);
    return {};
  }

  @Get('flash/:key')
  readFlash(@Session() s: SessionInterface, @Param('key') key: string) {
    return { value: s.getFlash(key) ?? null };
  }

  @Get('flashes')
  readFlashes(@Session() s: SessionInterface, @Query('keys') keys: string) {
    return Object.fromEntries(keys.split(',').map((k) => [k, s.getFlash(k) ?? null]));
  }

  @Post('reflash')
  reflash(@Session() s: SessionInterface) {
    s.reflash();
    return {};
  }

  @Post('keep/:key')
  keep(@Session() s: SessionInterface, @Param('key') key: string) {
    s.keep(key);
    return { value: s.getFlash(key) ?? null };
  }

  @Post('now')
  now(@Session() s: SessionInterface, @Body() b: { key: string; value: unknown }) {
    s.now(b.key, b.value);
    return { sameRequest: s.getFlash(b.key) ?? null };
  }

  @Post('regenerate')
  regenerate(@Session() s: SessionInterface, @Query('keep') keep?: string) {
    const before = s.getId();
    s.regenerate(keep !== '1');
    return { before, after: s.getId() };
  }

  @Post('invalidate')
  invalidate(@Session() s: SessionInterface) {
    s.invalidate();
    return { id: s.getId() };
  }

  @Post('logout')
  logout(@Session() s: SessionInterface) {
    s.invalidate();
    s.flash('status', 'Signed out');
    return { id: s.getId() };
  }

  @Post('login')
  login(@Session() s: SessionInterface, @Body() b: { userId: string }) {
    s.regenerate();
    s.setUserId(b.userId);
    return { id: s.getId() };
  }

  @Post('increment')
  async increment(@Session() s: SessionInterface) {
    const n = (s.get('counter', 0) as number) ?? 0;
    await sleep(5); // read-modify-write with an await in between: loses updates without a lock
    s.set('counter', n + 1);
    return { counter: n + 1 };
  }

  @Post('slow-increment')
  async slowIncrement(@Session() s: SessionInterface, @Query('ms') ms = '500') {
    const n = (s.get('counter', 0) as number) ?? 0;
    await sleep(Number(ms));
    s.set('counter', n + 1);
    return { counter: n + 1 };
  }

  @Get('slow-read')
  @SessionReadOnly()
  async slowRead(@Session() s: SessionInterface, @Query('ms') ms = '200') {
    await sleep(Number(ms));
    return { counter: s.get('counter', 0), readOnly: s.readOnly };
  }

  @Get('cache-read')
  @SessionReadOnly()
  cacheRead(@Session() s: SessionInterface, @Res({ passthrough: true }) res: { header(name: string, value: string): unknown }) {
    res.header('cache-control', 'public, max-age=600');
    return { counter: s.get('counter', 0) };
  }

  @Get('cache-write')
  cacheWrite(@Session() s: SessionInterface, @Res({ passthrough: true }) res: { header(name: string, value: string): unknown }) {
    res.header('cache-control', 'public, max-age=600');
    s.set('counter', (s.get('counter', 0) as number) + 1);
    return { counter: s.get('counter', 0) };
  }

  @Get('readonly-throw')
  @SessionReadOnly()
  readOnlyThrow(): never {
    throw new ConflictException('read-only handler failed');
  }

  @Post('readonly-write')
  @SessionReadOnly()
  readOnlyWrite(@Session() s: SessionInterface) {
    s.set('nope', 1);
    return {};
  }

  @Get('hold')
  async hold(@Session() s: SessionInterface, @Query('ms') ms = '1000') {
    await sleep(Number(ms));
    return { counter: s.get('counter', 0) };
  }

  @Post('throw')
  throwAfterSet(@Session() s: SessionInterface) {
    s.set('thrown', true);
    s.flash('error', 'it failed');
    throw new BadRequestException('handler failed on purpose');
  }

  @Post('guarded')
  @UseGuards(DenyGuard)
  guarded(@Session() s: SessionInterface) {
    s.set('never', true);
    return {};
  }

  @Get('untouched')
  untouched() {
    return { ok: true };
  }

  @Get('csrf')
  csrf(@Session() s: SessionInterface) {
    return { token: s.csrfToken() };
  }

  @Get('meta')
  meta(@Session() s: SessionInterface) {
    return { createdAt: s.createdAt?.getTime() ?? null, lastActivity: s.lastActivity?.getTime() ?? null, expiresAt: s.expiresAt?.getTime() ?? null };
  }
}

export interface TestApp {
  app: INestApplication;
  server: unknown;
  browser(headers?: Record<string, string>): Browser;
  close(): Promise<void>;
}

export async function createTestApp(
  platform: Platform,
  options: SessionModuleOptions = {},
  extra: {
    imports?: Array<Type<unknown> | DynamicModule>;
    controllers?: Array<Type<unknown>>;
    sessionModule?: DynamicModule;
    logger?: LoggerService;
    /** Runs before `app.init()`: `app.use()` there mounts a middleware ahead of the session's. */
    beforeInit?: (app: INestApplication) => void;
  } = {},
): Promise<TestApp> {
  @Module({
    imports: [extra.sessionModule ?? SessionModule.forRoot({ driver: 'memory', ...options }), ...(extra.imports ?? [])],
    controllers: [TestSessionController, ...(extra.controllers ?? [])],
  })
  class AppModule {}

  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication(platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(), { logger: extra.logger ?? false });
  extra.beforeInit?.(app);
  await app.init();
  if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  const server = app.getHttpServer();
  return {
    app,
    server,
    browser: (headers = {}) => new Browser(server, headers),
    close: () => app.close(),
  };
}

/** A minimal cookie-keeping client on supertest. */
export class Browser {
  cookie: string | null = null;
  lastSetCookie: string[] = [];

  constructor(
    private readonly server: unknown,
    public headers: Record<string, string> = {},
  ) {}

  get(path: string) {
    return this.send('get', path);
  }

  post(path: string, body?: object) {
    return this.send('post', path, body);
  }

  async send(method: 'get' | 'post', path: string, body?: object) {
    let req = request(this.server as Parameters<typeof request>[0])[method](path).set({ 'user-agent': 'jest-browser/1.0', ...this.headers });
    if (this.cookie) req = req.set('Cookie', this.cookie);
    if (body !== undefined) req = req.send(body);
    const res = await req;
    const raw = res.headers['set-cookie'] as unknown as string[] | string | undefined;
    this.lastSetCookie = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    for (const line of this.lastSetCookie) {
      const [pair] = line.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
      if (name !== 'ML_SESS') continue;
      this.cookie = /Max-Age=0/i.test(line) ? null : `${name}=${value}`;
    }
    return res;
  }

  get sessionId(): string | null {
    return this.cookie ? this.cookie.slice(this.cookie.indexOf('=') + 1) : null;
  }
}
