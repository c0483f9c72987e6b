import {
  Global,
  Inject,
  Logger,
  Module,
  Optional,
  RequestMethod,
  type OnModuleInit,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR, DiscoveryModule, DiscoveryService, HttpAdapterHost, MetadataScanner, Reflector } from '@nestjs/core';
import { SessionDriver } from './contracts/session-driver.interface.js';
import { SessionSerializer } from './contracts/session-serializer.interface.js';
import type { SessionModuleAsyncOptions, SessionModuleOptions, SessionOptionsFactory } from './contracts/session-options.interface.js';
import { SessionManager } from './core/session-manager.js';
import { describeError } from './core/session-id.util.js';
import { resolveSessionOptions, type ResolvedSessionOptions } from './core/session-options.resolver.js';
import { SESSION_MODULE_OPTIONS, SESSION_READ_ONLY, SESSION_RESOLVED_OPTIONS } from './core/session.constants.js';
import { DriverFactory, isDriver } from './drivers/driver.factory.js';
import { JsonSerializer } from './serializers/json.serializer.js';
import { EncryptedSerializer } from './serializers/encrypted.serializer.js';
import { CsrfGuard } from './http/csrf.guard.js';
import { SessionLifecycle, getSessionContext } from './http/session-lifecycle.service.js';
import { SessionMiddleware, SessionReadOnlyMiddleware } from './http/session.middleware.js';
import { SessionInterceptor } from './http/session.interceptor.js';

interface RouteInfo {
  path: string;
  method: RequestMethod;
  version?: string | string[];
}

const PATH_METADATA = 'path';
const METHOD_METADATA = 'method';
const VERSION_METADATA = '__version__';

/**
 * @param globalCsrf `true`/`false` when the options are known now (`forRoot`): the global guard is
 *   registered only when on, so other apps pay nothing for it. `'deferred'` (`forRootAsync`): the
 *   options come later, so a guard that checks `csrf.global` per request stands in.
 */
function coreProviders(globalCsrf: boolean | 'deferred'): Provider[] {
  const guard: Provider[] =
    globalCsrf === false
      ? []
      : [
          {
            provide: APP_GUARD,
            useFactory: (o: ResolvedSessionOptions, csrf: CsrfGuard) => (o.csrf.global ? csrf : { canActivate: () => true }),
            inject: [SESSION_RESOLVED_OPTIONS, CsrfGuard],
          },
        ];
  return [
    {
      provide: SESSION_RESOLVED_OPTIONS,
      useFactory: (raw: SessionModuleOptions) => resolveSessionOptions(raw),
      inject: [SESSION_MODULE_OPTIONS],
    },
    {
      provide: SessionDriver,
      useFactory: async (o: ResolvedSessionOptions) => {
        const driver = await DriverFactory.create({ driver: o.driver, file: o.file, database: o.database, redis: o.redis });
        await driver.open();
        return driver;
      },
      inject: [SESSION_RESOLVED_OPTIONS],
    },
    {
      provide: SessionSerializer,
      useFactory: (o: ResolvedSessionOptions) => buildSerializer(o),
      inject: [SESSION_RESOLVED_OPTIONS],
    },
    SessionManager,
    SessionLifecycle,
    SessionMiddleware,
    SessionReadOnlyMiddleware,
    { provide: APP_INTERCEPTOR, useClass: SessionInterceptor },
    CsrfGuard,
    ...guard,
  ];
}

const EXPORTS = [SessionManager, SessionDriver, SessionSerializer, SESSION_RESOLVED_OPTIONS, SessionLifecycle, CsrfGuard];

/**
 * `SessionModule.forRoot(options)` / `forRootAsync({ useFactory, inject, imports })`: a global
 * module that mounts the session middleware on every route and the commit interceptor.
 */
@Global()
@Module({})
export class SessionModule implements NestModule, OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Session');
  private gcTimer: NodeJS.Timeout | undefined;
  private gcRunning = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(SESSION_RESOLVED_OPTIONS) private readonly options: ResolvedSessionOptions,
    @Inject(SessionDriver) private readonly driver: SessionDriver,
    private readonly lifecycle: SessionLifecycle,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  static forRoot(options: SessionModuleOptions = {}): DynamicModule {
    return {
      module: SessionModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: SESSION_MODULE_OPTIONS, useValue: options }, ...coreProviders(options.csrf?.global === true)],
      exports: EXPORTS,
    };
  }

  static forRootAsync(options: SessionModuleAsyncOptions): DynamicModule {
    return {
      module: SessionModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [...asyncOptionsProviders(options), ...coreProviders('deferred')],
      exports: EXPORTS,
    };
  }

  /**
   * `@SessionReadOnly()` routes get the read-only middleware, mounted first; every route then gets
   * the locking one, which steps aside when the read-only one already started the session. Not
   * `exclude()`: Nest matches every request against the excluded routes (a few µs per request on
   * every route), while this costs one WeakMap lookup, and a request is never left without a
   * session if the two matchers disagree (trailing slash, HEAD).
   */
  configure(consumer: MiddlewareConsumer): void {
    const readOnly = this.readOnlyRoutes();
    if (readOnly.length > 0) consumer.apply(SessionReadOnlyMiddleware).forRoutes(...readOnly);
    consumer.apply(SessionMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }

  /**
   * `request.session` as a getter on the platform's request: on Fastify (not only
   * `request.raw.session`) for guards and handlers; on Express instead of a property stored on
   * every `req`, which cost about 4 µs per request in profiles.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter?.getType() === 'express') {
      this.defineExpressSessionGetter((adapter.getInstance() as { request?: object }).request);
      return;
    }
    if (!adapter || adapter.getType() !== 'fastify') return;
    const fastify = adapter.getInstance() as {
      hasRequestDecorator(name: string): boolean;
      decorateRequest(name: string, value: { getter(this: { raw: unknown }): unknown; setter(this: object, value: unknown): void }): void;
    };
    if (fastify.hasRequestDecorator('session')) {
      this.logger.warn('request.session is already decorated on Fastify (@fastify/session?); use @Session() or request.raw.session.');
      return;
    }
    fastify.decorateRequest('session', {
      getter() {
        return getSessionContext(this.raw)?.handle;
      },
      // As on Express: an application may put its own value there for its own request.
      setter(value) {
        shadowSession(this, value);
      },
    });
  }

  /**
   * `req.session` read from the request's session context, on the prototype Express gives every
   * `req` of this app (`app.request`). Assigning `req.session` still works (an own property then
   * shadows the getter). If something else already defined it there, requests get the property
   * stored as before.
   */
  private defineExpressSessionGetter(requestProto: object | undefined): void {
    if (!requestProto || Object.prototype.hasOwnProperty.call(requestProto, 'session')) return;
    Object.defineProperty(requestProto, 'session', {
      configurable: true,
      enumerable: false,
      get(this: object): unknown {
        return getSessionContext(this)?.handle;
      },
      set(this: object, value: unknown) {
        shadowSession(this, value);
      },
    });
    this.lifecycle.useSessionGetter();
  }

  onApplicationBootstrap(): void {
    if (this.options.gcIntervalMs <= 0) return;
    this.gcTimer = setInterval(() => void this.collectGarbage(), this.options.gcIntervalMs);
    // A GC timer must never keep a process alive (CLI scripts, tests).
    this.gcTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.gcTimer = undefined;
    // A driver instance passed in options belongs to the application: it closes it.
    if (!isDriver(this.options.driver)) await this.driver.close();
  }

  private async collectGarbage(): Promise<void> {
    if (this.gcRunning) return;
    this.gcRunning = true;
    try {
      const removed = await this.driver.gc();
      if (removed > 0) this.logger.debug(`Garbage collection removed ${removed} expired session(s).`);
    } catch (err) {
      this.logger.warn(`Session garbage collection failed (will retry next interval): ${describeError(err)}`);
    } finally {
      this.gcRunning = false;
    }
  }

  /** Routes of handlers (or controllers) marked `@SessionReadOnly()`, as Nest route infos. */
  private readOnlyRoutes(): RouteInfo[] {
    const routes: RouteInfo[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const type = wrapper.metatype as (new (...args: unknown[]) => unknown) | undefined;
      if (!type || !type.prototype) continue;
      const classReadOnly = this.reflector.get<boolean>(SESSION_READ_ONLY, type) === true;
      const controllerPaths = asArray(Reflect.getMetadata(PATH_METADATA, type) as string | string[] | undefined);
      const classVersion = Reflect.getMetadata(VERSION_METADATA, type) as RouteInfo['version'];
      for (const name of this.scanner.getAllMethodNames(type.prototype)) {
        const handler = (type.prototype as Record<string, unknown>)[name] as object;
        const methodPaths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        if (methodPaths === undefined) continue; // not a route
        const readOnly = this.reflector.get<boolean>(SESSION_READ_ONLY, handler as never) ?? classReadOnly;
        if (readOnly !== true) continue;
        const method = (Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined) ?? RequestMethod.GET;
        const version = (Reflect.getMetadata(VERSION_METADATA, handler) as RouteInfo['version']) ?? classVersion;
        for (const cp of controllerPaths.length ? controllerPaths : ['']) {
          for (const mp of asArray(methodPaths)) {
            const path = '/' + [cp, mp].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
            routes.push(version === undefined ? { path, method } : { path, method, version });
          }
        }
      }
    }
    return routes;
  }
}

/** An application's own `request.session` value: an own property over the getter, for that request only. */
function shadowSession(request: object, value: unknown): void {
  Object.defineProperty(request, 'session', { value, writable: true, configurable: true, enumerable: true });
}

/** JSON (or the user's serializer), wrapped in AES-256-GCM when keys are configured. */
function buildSerializer(o: ResolvedSessionOptions): SessionSerializer {
  const base = o.serializer ?? new JsonSerializer();
  // The keys were checked by resolveSessionOptions.
  if (o.encryption.keys.length === 0) return base;
  return new EncryptedSerializer(o.encryption.keys, base);
}

function asArray(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function asyncOptionsProviders(options: SessionModuleAsyncOptions): Provider[] {
  if (options.useFactory) {
    return [{ provide: SESSION_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factoryClass = options.useClass ?? options.useExisting;
  if (!factoryClass) {
    throw new Error('SessionModule.forRootAsync() needs useFactory, useClass or useExisting.');
  }
  const providers: Provider[] = [
    {
      provide: SESSION_MODULE_OPTIONS,
      useFactory: (factory: SessionOptionsFactory) => factory.createSessionOptions(),
      inject: [factoryClass],
    },
  ];
  if (options.useClass) providers.push({ provide: options.useClass, useClass: options.useClass });
  return providers;
}
