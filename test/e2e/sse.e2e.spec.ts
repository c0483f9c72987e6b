import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Get, Param, Sse, type MessageEvent } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { map, timer, type Observable } from 'rxjs';
import { Session, SessionReadOnly } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';

@Controller('stream')
class StreamController {
  @Sse('events')
  events(@Session() s: SessionInterface): Observable<MessageEvent> {
    const counter = s.get('counter', 0) as number;
    // The first event comes late: the lock must not wait for it.
    return timer(1500, 500).pipe(map((i) => ({ data: { counter, tick: i } })));
  }
}

@Controller('feed')
class FeedController {
  /** Shares the pattern of the read-only `:id` below: its session starts read-only and the interceptor upgrades it. */
  @Sse('live')
  live(@Session() s: SessionInterface): Observable<MessageEvent> {
    s.get('counter');
    return timer(0, 500).pipe(map((i) => ({ data: { tick: i } })));
  }

  @Get(':id')
  @SessionReadOnly()
  show(@Param('id') id: string): { id: string } {
    return { id };
  }
}

describe.each(PLATFORMS)('server-sent events (%s)', (platform) => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    // A short lock wait, so that a lock left behind shows as a 423 within the test.
    t = await createTestApp(platform, { lock: { waitTimeout: 2 } }, { controllers: [StreamController, FeedController] });
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(() => t.close());

  it('an open event stream reads the session and does not hold its lock', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 7 });
    let req!: http.ClientRequest;
    let text = '';
    const headers = new Promise<void>((resolve, reject) => {
      req = http.get({ host: '127.0.0.1', port, path: '/stream/events', headers: { cookie: b.cookie!, 'user-agent': 'jest-browser/1.0' } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        resolve();
      });
      req.on('error', reject);
    });
    try {
      await headers;
      // The stream is open and has sent nothing yet; the same session's next request must not wait for it.
      const started = Date.now();
      const res = await b.post('/s/increment');
      expect(res.status).toBe(201);
      expect(Date.now() - started).toBeLessThan(1000);
      while (!text.includes('data:')) await new Promise((r) => setTimeout(r, 50));
      expect(text).toContain('"counter":7');
    } finally {
      req.destroy();
    }
  });

  it('a client that leaves while its stream waits for the lock (upgrade from read-only) leaves no lock behind', async () => {
    const b = t.browser();
    await b.post('/s/set', { counter: 1 });
    const holder = b.post('/s/slow-increment?ms=1200'); // holds the session's lock for 1.2 s
    await new Promise((r) => setTimeout(r, 150));
    // The stream's session starts read-only (path guess) and its upgrade now waits for that lock.
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/feed/live', headers: { cookie: b.cookie!, 'user-agent': 'jest-browser/1.0' } }, (res) => {
        res.resume();
        setTimeout(() => {
          req.destroy(); // gone before the lock came
          resolve();
        }, 100);
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    expect((await holder).status).toBe(201);
    // The upgrade got the lock after the client left: it must give it up, not keep renewing it.
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const next = await b.post('/s/increment');
    expect(next.status).toBe(201);
    expect(next.body.counter).toBe(3);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
