import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { Controller, Sse, type MessageEvent } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { map, timer, type Observable } from 'rxjs';
import { Session } from '../../lib/http/session.decorators.js';
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

describe.each(PLATFORMS)('server-sent events (%s)', (platform) => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp(platform, {}, { controllers: [StreamController] });
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
});
