/**
 * Edges of the request lifecycle found by review:
 * - a client that leaves before the session middleware runs (an application middleware ahead of
 *   it is slow) must not leave its session locked: its `close` has already fired, so no listener
 *   attached afterwards would ever release the lock (it was renewed for 10 × lock.ttl);
 * - a guard that saves without awaiting, before a `@SessionReadOnly()` handler whose path the
 *   middleware guessed wrong (so the session is downgraded): the save lands before the lock goes,
 *   and its cookie is sent.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { ConsoleLogger, Controller, Get, Req, Injectable, Module, Post, UseGuards, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Session, SessionReadOnly, getSession } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { sleep } from '../support/records.js';

/** Writes take 50 ms, as over a network: long enough for the request to move on meanwhile. */
class SlowWriteDriver extends MemoryDriver {
  override async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    await sleep(50);
    return super.write(id, record, lockToken);
  }
}

@Injectable()
class RefuseGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

/** Signs in without awaiting the save, then refuses the request: the save lands, its cookie cannot be sent. */
@Injectable()
class SaveThenRefuseGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const s = getSession(context.switchToHttp().getRequest()) as SessionInterface;
    s.regenerate();
    s.set('x', 1);
    void s.save().catch(() => undefined);
    return false;
  }
}

/** Signs in without awaiting the save: the handler's read-only mode must not cut it short. */
@Injectable()
class UnawaitedSaveGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const s = getSession(context.switchToHttp().getRequest()) as SessionInterface;
    s.set('signedIn', true);
    void s.save().catch(() => undefined);
    return true;
  }
}

@Controller()
class EdgesController {
  @Post('set')
  set(@Session() s: SessionInterface) {
    s.set('n', 1);
    return { id: s.getId() };
  }

  @Get('rw')
  rw(@Session() s: SessionInterface) {
    s.set('n', Number(s.get('n', 0)) + 1);
    return { n: s.get('n') };
  }

  @Get('read')
  @SessionReadOnly()
  read(@Session() s: SessionInterface) {
    return { id: s.getId(), data: s.all() };
  }

  @Get('slow/refused')
  @UseGuards(RefuseGuard)
  slowRefused() {
    return { never: true };
  }

  @Get('refused')
  @UseGuards(RefuseGuard)
  refused() {
    return { never: true };
  }

  /** How many `close` listeners the request's connection has while its handler runs. */
  @Get('listeners')
  @SessionReadOnly()
  listeners(@Req() req: { raw?: IncomingMessage } & IncomingMessage) {
    return { close: (req.raw ?? req).socket.listenerCount('close') };
  }

  @Get('save-then-refuse')
  @UseGuards(SaveThenRefuseGuard)
  saveThenRefuse() {
    return { never: true };
  }

  /** A pipelined request's predecessor: no session, no middleware delay. */
  @Get('slow/first')
  @SessionReadOnly()
  first() {
    return { ok: true };
  }

  /** Keeps the connection's first response busy (pipelined requests wait behind it). */
  @Get('pause')
  @SessionReadOnly()
  async pause() {
    await sleep(600);
    return { ok: true };
  }

  /** Holds the session's lock for 300 ms. */
  @Get('hold')
  async hold(@Session() s: SessionInterface) {
    await sleep(300);
    s.set('held', true);
    return { ok: true };
  }
}

/** Under a RouterModule prefix: the middleware's path guess locks, the handler is read-only (a downgrade). */
@Controller('pages')
class PagesController {
  @Get(':id')
  @SessionReadOnly()
  @UseGuards(UnawaitedSaveGuard)
  show(@Session() s: SessionInterface) {
    return { readOnly: s.readOnly };
  }
}

@Module({ controllers: [PagesController] })
class PagesModule {}

/** A raw request that the client may abort; resolves with the status, or 'aborted'. */
function rawRequest(port: number, path: string, cookie: string, abortAfterMs?: number): Promise<number | 'aborted'> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path, headers: { cookie, 'user-agent': 'jest-browser/1.0' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', () => resolve('aborted'));
    req.end();
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs);
  });
}

/** GET requests written back to back, as one HTTP/1.1 pipeline. */
function pipelineText(paths: Array<{ path: string; cookie?: string }>): string {
  return paths.map((p) => `GET ${p.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: jest-browser/1.0\r\n${p.cookie ? `Cookie: ${p.cookie}\r\n` : ''}\r\n`).join('');
}

/** Writes several requests at once on one connection (HTTP/1.1 pipelining) and closes it after `closeAfterMs`. */
function pipelined(port: number, paths: Array<{ path: string; cookie?: string }>, closeAfterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(pipelineText(paths));
      setTimeout(() => socket.destroy(), closeAfterMs);
    });
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

/** Captures what the application logs at warn level. */
class WarnLog extends ConsoleLogger {
  warnings: string[] = [];
  override warn(message: unknown): void {
    this.warnings.push(String(message));
  }
  override log(): void {}
  override error(): void {}
}

/** Pipelines requests on one connection and resolves with everything the server sent, once it has answered them all. */
function pipelinedReplies(port: number, paths: Array<{ path: string; cookie?: string }>): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(pipelineText(paths));
    });
    socket.on('data', (d: Buffer) => {
      received += d.toString();
      if ((received.match(/HTTP\/1\.1 /g) ?? []).length === paths.length && received.endsWith('}')) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', reject);
  });
}

describe.each(PLATFORMS)('lifecycle edges (%s)', (platform) => {
  let t: TestApp;
  let port: number;
  const logs = new WarnLog();
  beforeAll(async () => {
    t = await createTestApp(
      platform,
      { driver: new SlowWriteDriver(), lock: { waitTimeout: 1, ttl: 3 } },
      {
        controllers: [EdgesController],
        logger: logs,
        imports: [PagesModule, RouterModule.register([{ path: 'admin', module: PagesModule }])],
        beforeInit: (app: INestApplication) => {
          // An application middleware ahead of the session's, slow on /slow paths.
          app.use(async (req: { originalUrl?: string; url?: string }, _res: unknown, next: () => void) => {
            if ((req.originalUrl ?? req.url ?? '').startsWith('/slow')) await sleep(300);
            next();
          });
        },
      },
    );
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(() => t.close());

  it('a client gone before the session middleware ran leaves the session unlocked', async () => {
    const b = t.browser();
    await b.post('/set');
    expect(await rawRequest(port, '/slow/refused', b.cookie!, 50)).toBe('aborted');
    await sleep(400); // the slow middleware has passed on to the session's by now
    const started = Date.now();
    const next = await b.get('/rw');
    expect(next.status).toBe(200); // was 423 after lock.waitTimeout: the lock was held and renewed
    expect(next.body).toEqual({ n: 2 });
    expect(Date.now() - started).toBeLessThan(900); // a held lock answers 423 only after lock.waitTimeout (1 s)
  });

  it('the same for a pipelined request queued behind another one (its response has no socket, only its connection closes)', async () => {
    const b = t.browser();
    await b.post('/set');
    await pipelined(port, [{ path: '/slow/first' }, { path: '/slow/refused', cookie: b.cookie! }], 50);
    await sleep(400);
    const started = Date.now();
    expect((await b.get('/rw')).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(900); // a held lock answers 423 only after lock.waitTimeout (1 s)
  });

  it('a pipelined request whose client leaves while it waits for the lock releases it when the lock arrives', async () => {
    const b = t.browser();
    await b.post('/set');
    const holding = b.get('/hold'); // holds the lock for 300 ms
    await sleep(50);
    // Waits for that lock behind a busy first response; the client leaves at 100 ms.
    await pipelined(port, [{ path: '/pause' }, { path: '/refused', cookie: b.cookie! }], 100);
    expect((await holding).status).toBe(200);
    await sleep(150);
    const started = Date.now();
    const next = await b.get('/rw');
    expect(next.status).toBe(200); // was 423: the refused request's lock was never released
    expect(next.body).toEqual({ n: 2 });
    expect(Date.now() - started).toBeLessThan(900); // a held lock answers 423 only after lock.waitTimeout (1 s)
  });

  it('a pipelined request refused by a guard lets its lock go when it ends, not when the response ahead of it is done', async () => {
    const b = t.browser();
    await b.post('/set');
    // /refused waits on its connection behind /pause (600 ms); the client stays.
    const replies = pipelinedReplies(port, [{ path: '/pause' }, { path: '/refused', cookie: b.cookie! }]);
    await sleep(100);
    const started = Date.now();
    const next = await b.get('/rw');
    expect(next.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(350); // was ~500: the lock stayed until /pause was answered
    expect((await replies).match(/HTTP\/1\.1 (\d+)/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 403']);
  });

  it('many pipelined requests on one connection: one listener of ours on it, not one per request', async () => {
    const b = t.browser();
    await b.post('/set');
    const alone = JSON.parse((await b.get('/listeners')).text) as { close: number };
    const replies = await pipelinedReplies(port, Array.from({ length: 20 }, () => ({ path: '/listeners', cookie: b.cookie! })));
    const counts = [...replies.matchAll(/\{"close":(\d+)\}/g)].map((m) => Number(m[1]));
    expect(counts).toHaveLength(20);
    // Node's and the platform's own, plus at most one of ours (was one per queued request: MaxListenersExceededWarning).
    expect(Math.max(...counts)).toBeLessThanOrEqual(alone.close + 1);
  });

  it('a guard that saves without awaiting and then refuses: the save lands, and the lost cookie is logged', async () => {
    const b = t.browser();
    await b.post('/set');
    logs.warnings = [];
    expect((await b.get('/save-then-refuse')).status).toBe(403);
    for (let i = 0; i < 50 && !logs.warnings.some((w) => w.includes('cookie could not be set')); i++) await sleep(10);
    expect(logs.warnings.some((w) => w.includes('cookie could not be set'))).toBe(true);
  });

  it('a guard\'s unawaited save before a downgraded read-only handler: stored, and its cookie sent', async () => {
    const b = t.browser();
    const res = await b.get('/admin/pages/1');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ readOnly: true });
    expect(b.cookie).not.toBeNull(); // the new session's cookie
    const read = await b.get('/read');
    expect(read.body).toEqual({ id: b.sessionId, data: { signedIn: true } });
  });

  it('the same with an existing session: the save lands before the lock is let go', async () => {
    const b = t.browser();
    await b.post('/set');
    const before = b.cookie;
    expect((await b.get('/admin/pages/2')).status).toBe(200);
    expect(b.cookie).toBe(before);
    expect((await b.get('/read')).body).toEqual({ id: b.sessionId, data: { n: 1, signedIn: true } });
    // Nobody holds the lock now: a locking request gets in at once.
    expect((await b.get('/rw')).body).toEqual({ n: 2 });
  });
});
