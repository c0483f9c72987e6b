/**
 * The Nest applications under test. Every contender is the same Nest app (one root module, one
 * controller with the routes of common.ts) with a different session layer; only what the
 * session layer needs differs (a middleware for express-session, plugins for @fastify/session,
 * `SessionModule.forRoot()` for this module).
 */
import {
  Injectable,
  Module,
  RequestMethod,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type LogLevel,
  type MiddlewareConsumer,
  type NestInterceptor,
  type NestMiddleware,
  type NestModule,
} from '@nestjs/common';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { RequestHandler } from 'express';
import { SessionModule, type SessionModuleOptions } from '../../lib/index.js';
import { ExpressSessionController, FastifySessionController, NoSessionController, OurSessionController } from './controllers.js';

const LOGGER: LogLevel[] = ['error', 'warn'];

export type Platform = 'express' | 'fastify';

/** (a): no session layer at all. */
export async function createNoSessionApp(): Promise<INestApplication> {
  @Module({ controllers: [NoSessionController] })
  class NoSessionBenchModule {}
  return NestFactory.create(NoSessionBenchModule, { logger: LOGGER });
}

/** This module with the given options, on Express or Fastify. */
export async function createOurApp(options: SessionModuleOptions, platform: Platform): Promise<INestApplication> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [OurSessionController] })
  class OurSessionBenchModule {}
  if (platform === 'fastify') {
    return NestFactory.create<NestFastifyApplication>(OurSessionBenchModule, new FastifyAdapter(), { logger: LOGGER });
  }
  return NestFactory.create(OurSessionBenchModule, { logger: LOGGER });
}

/** express-session (whatever store) mounted the way its docs show: `app.use(session({...}))`. */
export async function createExpressSessionApp(sessionMiddleware: RequestHandler): Promise<INestApplication> {
  @Module({ controllers: [ExpressSessionController] })
  class ExpressSessionBenchModule {}
  const app = await NestFactory.create(ExpressSessionBenchModule, { logger: LOGGER });
  app.use(sessionMiddleware);
  return app;
}

/** A Nest Fastify app whose caller registers @fastify/cookie and @fastify/session on it. */
export async function createFastifySessionApp(): Promise<NestFastifyApplication> {
  @Module({ controllers: [FastifySessionController] })
  class FastifySessionBenchModule {}
  return NestFactory.create<NestFastifyApplication>(FastifySessionBenchModule, new FastifyAdapter(), { logger: LOGGER });
}

/**
 * Experiments: (a) with only the mounting this module needs, doing nothing. `interceptor`: a
 * global interceptor that returns `next.handle()`; `both`: that plus a Nest middleware on every
 * route that calls `next()`. What Nest itself charges for the hooks, before any session work.
 */
export async function createMountingOnlyApp(mounting: 'interceptor' | 'both'): Promise<INestApplication> {
  @Injectable()
  class PassThroughInterceptor implements NestInterceptor {
    intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
      return next.handle();
    }
  }
  @Injectable()
  class PassThroughMiddleware implements NestMiddleware {
    use(_req: unknown, _res: unknown, next: () => void): void {
      next();
    }
  }
  @Module({ controllers: [NoSessionController], providers: [{ provide: APP_INTERCEPTOR, useClass: PassThroughInterceptor }] })
  class MountingOnlyBenchModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      if (mounting === 'both') consumer.apply(PassThroughMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
    }
  }
  return NestFactory.create(MountingOnlyBenchModule, { logger: LOGGER });
}
