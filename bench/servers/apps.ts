/**
 * The Nest applications under test. Every contender is the same Nest app (one root module, one
 * controller with the routes of common.ts) with a different session layer; only what the
 * session layer needs differs (a middleware for express-session, plugins for @fastify/session,
 * `SessionModule.forRoot()` for this module).
 */
import { Module, type INestApplication, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
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
