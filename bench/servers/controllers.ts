/**
 * One controller per session family, all with the same routes and the same work per route
 * (see common.ts). Handlers are deliberately trivial: the benchmark measures the session layer.
 */
import { Controller, Get, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { FastifyRequest } from 'fastify';
import { Session, SessionReadOnly, type SessionInterface } from '../../lib/index.js';
import { hotDelay, takeHotStats } from './common.js';

declare module 'express-session' {
  interface SessionData {
    n: number;
    hot: number;
  }
}

/** What the reading routes return. */
interface Reading {
  n: number | null;
  hot: number | null;
}

const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

/** (a) No session middleware: the same routes, no session work. */
@Controller()
export class NoSessionController {
  @Get('login')
  login(): { ok: boolean } {
    return { ok: true };
  }

  @Get('rw')
  rw(): { n: number } {
    return { n: 1 };
  }

  @Get('ro')
  ro(): Reading {
    return { n: null, hot: null };
  }

  @Get('peek')
  peek(): Reading {
    return { n: null, hot: null };
  }

  @Get('hot-stats')
  hotStats(): { count: number; meanMs: number } {
    return takeHotStats();
  }

  @Get('hot')
  async hot(): Promise<{ hot: number }> {
    await hotDelay();
    return { hot: 1 };
  }
}

/** (c)–(g): this module, through its own `@Session()` decorator. */
@Controller()
export class OurSessionController {
  @Get('login')
  login(@Session() session: SessionInterface): { ok: boolean } {
    session.set('n', 0);
    session.set('hot', 0);
    return { ok: true };
  }

  @Get('rw')
  rw(@Session() session: SessionInterface): { n: number } {
    const n = num(session.get('n')) + 1;
    session.set('n', n);
    return { n };
  }

  @Get('ro')
  @SessionReadOnly()
  ro(@Session() session: SessionInterface): Reading {
    return { n: (session.get('n') as number | undefined) ?? null, hot: (session.get('hot') as number | undefined) ?? null };
  }

  @Get('peek')
  peek(@Session() session: SessionInterface): Reading {
    return { n: (session.get('n') as number | undefined) ?? null, hot: (session.get('hot') as number | undefined) ?? null };
  }

  @Get('hot-stats')
  hotStats(): { count: number; meanMs: number } {
    return takeHotStats();
  }

  @Get('hot')
  async hot(@Session() session: SessionInterface): Promise<{ hot: number }> {
    const hot = num(session.get('hot'));
    await hotDelay();
    session.set('hot', hot + 1);
    return { hot: hot + 1 };
  }
}

/** (b), (e), (f) baselines: express-session, `req.session`. */
@Controller()
export class ExpressSessionController {
  @Get('login')
  login(@Req() req: Request): { ok: boolean } {
    req.session.n = 0;
    req.session.hot = 0;
    return { ok: true };
  }

  @Get('rw')
  rw(@Req() req: Request): { n: number } {
    const n = num(req.session.n) + 1;
    req.session.n = n;
    return { n };
  }

  @Get('ro')
  ro(@Req() req: Request): Reading {
    return { n: req.session.n ?? null, hot: req.session.hot ?? null };
  }

  @Get('peek')
  peek(@Req() req: Request): Reading {
    return { n: req.session.n ?? null, hot: req.session.hot ?? null };
  }

  @Get('hot-stats')
  hotStats(): { count: number; meanMs: number } {
    return takeHotStats();
  }

  @Get('hot')
  async hot(@Req() req: Request): Promise<{ hot: number }> {
    const hot = num(req.session.hot);
    await hotDelay();
    req.session.hot = hot + 1;
    return { hot: hot + 1 };
  }
}

/** The subset of @fastify/session's `request.session` used here. */
interface FastifySessionLike {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

function fastifySession(req: FastifyRequest): FastifySessionLike {
  return (req as unknown as { session: FastifySessionLike }).session;
}

/** (g) baseline: @fastify/session, `request.session.get/set`. */
@Controller()
export class FastifySessionController {
  @Get('login')
  login(@Req() req: FastifyRequest): { ok: boolean } {
    const session = fastifySession(req);
    session.set('n', 0);
    session.set('hot', 0);
    return { ok: true };
  }

  @Get('rw')
  rw(@Req() req: FastifyRequest): { n: number } {
    const session = fastifySession(req);
    const n = num(session.get('n')) + 1;
    session.set('n', n);
    return { n };
  }

  @Get('ro')
  ro(@Req() req: FastifyRequest): Reading {
    const session = fastifySession(req);
    return { n: (session.get('n') as number | undefined) ?? null, hot: (session.get('hot') as number | undefined) ?? null };
  }

  @Get('peek')
  peek(@Req() req: FastifyRequest): Reading {
    const session = fastifySession(req);
    return { n: (session.get('n') as number | undefined) ?? null, hot: (session.get('hot') as number | undefined) ?? null };
  }

  @Get('hot-stats')
  hotStats(): { count: number; meanMs: number } {
    return takeHotStats();
  }

  @Get('hot')
  async hot(@Req() req: FastifyRequest): Promise<{ hot: number }> {
    const session = fastifySession(req);
    const hot = num(session.get('hot'));
    await hotDelay();
    session.set('hot', hot + 1);
    return { hot: hot + 1 };
  }
}
